import graphology from 'graphology';
import { topologicalSort } from 'graphology-dag';
import type { ExpandedPipeline, NodeInstance } from '../config/expand.js';

const { DirectedGraph } = graphology;
export type NodeGraph = InstanceType<typeof DirectedGraph<{ node: NodeInstance }>>;

export interface Dag {
  graph: NodeGraph;
  /** Node ids, every node after all of its inputs. */
  order: string[];
}

/** The instance graph: an edge from every upstream instance to the node that reads it. */
export function buildDag(pipeline: ExpandedPipeline): Dag {
  const graph: NodeGraph = new DirectedGraph<{ node: NodeInstance }>();
  for (const node of pipeline.nodes.values()) graph.addNode(node.id, { node });
  for (const node of pipeline.nodes.values()) {
    for (const input of Object.values(node.inputs)) {
      for (const up of input.upstream) if (!graph.hasEdge(up.node, node.id)) graph.addEdge(up.node, node.id);
    }
  }
  return { graph, order: topologicalSort(graph) };
}

export function ancestorsOf(graph: NodeGraph, ids: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const stack = [...ids];
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (out.has(id)) continue;
    out.add(id);
    graph.forEachInNeighbor(id, (up) => stack.push(up));
  }
  return out;
}

export function descendantsOf(graph: NodeGraph, id: string): Set<string> {
  const out = new Set<string>();
  const stack = [id];
  while (stack.length > 0) {
    graph.forEachOutNeighbor(stack.pop()!, (down) => {
      if (!out.has(down)) {
        out.add(down);
        stack.push(down);
      }
    });
  }
  return out;
}
