import type { ExpandedPipeline } from '../config/expand.js';
import type { Dag } from './dag.js';

export type DagFormat = 'text' | 'dot' | 'mermaid';

interface Edge {
  from: string;
  to: string;
}

/** Nodes and edges, either per instance or collapsed to one vertex per stage. */
function view(pipeline: ExpandedPipeline, dag: Dag, selected: Set<string>, stagesOnly: boolean): { vertices: string[]; edges: Edge[]; label: (v: string) => string } {
  if (!stagesOnly) {
    const vertices = dag.order.filter((id) => selected.has(id));
    const edges: Edge[] = [];
    for (const to of vertices) for (const from of dag.graph.inNeighbors(to)) if (selected.has(from)) edges.push({ from, to });
    return { vertices, edges, label: (v) => v };
  }
  const stageOf = (id: string) => pipeline.nodes.get(id)!.stage;
  const present = new Set([...selected].map(stageOf));
  const seen = new Set<string>();
  const edges: Edge[] = [];
  for (const id of dag.order) {
    if (!selected.has(id)) continue;
    for (const from of dag.graph.inNeighbors(id)) {
      const e = `${stageOf(from)}\u0000${stageOf(id)}`;
      if (selected.has(from) && !seen.has(e)) {
        seen.add(e);
        edges.push({ from: stageOf(from), to: stageOf(id) });
      }
    }
  }
  // Stages in dependency order (Kahn), ties in the order the pipeline file declares them.
  const declared = [...pipeline.spec.stages.keys()].filter((st) => present.has(st));
  const indegree = new Map(declared.map((st) => [st, edges.filter((e) => e.to === st).length]));
  const vertices: string[] = [];
  while (vertices.length < declared.length) {
    const next = declared.find((st) => !vertices.includes(st) && indegree.get(st) === 0);
    if (!next) break;
    vertices.push(next);
    for (const e of edges) if (e.from === next) indegree.set(e.to, indegree.get(e.to)! - 1);
  }
  const counts = new Map<string, number>();
  for (const id of selected) counts.set(stageOf(id), (counts.get(stageOf(id)) ?? 0) + 1);
  return { vertices, edges, label: (v) => `${v} ×${counts.get(v)}` };
}

export function renderDag(pipeline: ExpandedPipeline, dag: Dag, selected: Set<string>, format: DagFormat, stagesOnly = false): string {
  const { vertices, edges, label } = view(pipeline, dag, selected, stagesOnly);
  const quote = (s: string) => JSON.stringify(s);
  if (format === 'dot') {
    const lines = [`digraph ${quote(pipeline.spec.name)} {`, '  rankdir=LR;', '  node [shape=box];'];
    for (const v of vertices) lines.push(`  ${quote(v)} [label=${quote(label(v))}];`);
    for (const e of edges) lines.push(`  ${quote(e.from)} -> ${quote(e.to)};`);
    lines.push('}');
    return lines.join('\n');
  }
  if (format === 'mermaid') {
    const ids = new Map(vertices.map((v, i) => [v, `n${i}`]));
    const esc = (s: string) => s.replace(/"/g, '#quot;');
    const lines = ['flowchart LR'];
    for (const v of vertices) lines.push(`  ${ids.get(v)}["${esc(label(v))}"]`);
    for (const e of edges) lines.push(`  ${ids.get(e.from)} --> ${ids.get(e.to)}`);
    return lines.join('\n');
  }
  // Text: each vertex once, in dependency order, with what it reads from.
  const inputs = new Map<string, string[]>();
  for (const e of edges) inputs.set(e.to, [...(inputs.get(e.to) ?? []), e.from]);
  return vertices
    .map((v) => {
      const from = inputs.get(v);
      return from ? `${label(v)}\n${from.map((f, i) => `  ${i === from.length - 1 ? '└─' : '├─'} ${f}`).join('\n')}` : label(v);
    })
    .join('\n');
}
