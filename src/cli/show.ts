import { readFile } from 'node:fs/promises';
import type { JSONValue } from '../contract.js';
import { requireNode, selectNodes } from '../graph/select.js';
import { planNodes } from '../run/plan.js';
import { describeReason } from '../run/reason.js';
import type { Artifact, Manifest } from '../store/artifacts.js';
import { Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { existingCacheDir } from './options.js';
import { table } from './output.js';
import type { Common } from './run-command.js';
import { openPipeline, type CliEnv } from './session.js';

export type ShowFlags = Common & { output?: string; full?: boolean; json?: boolean };

function oneLine(value: JSONValue, width: number): string {
  const text = JSON.stringify(value);
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function describeArtifact(a: Artifact): string {
  if (a.type === 'json') return oneLine(a.value, 100);
  if (a.type === 'file') return `${a.filename}, ${a.size.toLocaleString('en')} bytes`;
  if (a.type === 'dir') return `a tree of ${a.files.toLocaleString('en')} files, ${a.size.toLocaleString('en')} bytes`;
  return `${a.count.toLocaleString('en')} records`;
}

/** What `pipeline show` prints by default: a screenful, whatever the size of the outputs. */
export function manifestSummary(m: Manifest, cacheDir: string): string {
  const p = m.provenance;
  const engine = p.reported['engine'];
  const lines = [
    `${m.node}  (stage ${m.stage}, kind ${m.kind} v${m.version}, pipeline ${m.pipeline})`,
    `key       ${m.key}`,
    `finished  ${p.started} on ${p.host}, took ${p.duration_s.toFixed(1)} s`,
    ...(engine && typeof engine === 'object' && !Array.isArray(engine) ? [`engine    ${oneLine(engine, 100)}`] : []),
    `log       ${cacheDir}/${p.log}`,
    '',
    table([['output', 'type', 'digest', 'value'], ...Object.entries(m.outputs).map(([name, a]) => [name, a.type, a.digest.slice(0, 12), describeArtifact(a)])]),
    '',
    '--full (or --json) prints the whole manifest with key material and provenance; -o NAME prints one output',
  ];
  return lines.join('\n') + '\n';
}

/** `pipeline show FILE NODE`: 0, or 1 when the node is not cached (its last result, if any, is shown). */
export async function showCommand(file: string, node: string, flags: ShowFlags, env: CliEnv): Promise<number> {
  const opened = await openPipeline(file, flags.set, env);
  requireNode(opened.pipeline, file, node);
  const store = new Store(existingCacheDir(flags.cache));
  try {
    const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: [node] }));
    const o = outcomes.get(node)!;
    if (o.manifest && flags.output !== undefined) {
      const artifact = o.manifest.outputs[flags.output];
      if (!artifact) throw new ConfigError(`${node} has no output "${flags.output}" (outputs: ${Object.keys(o.manifest.outputs).join(', ')})`, { file: `--output ${flags.output}`, line: 0, col: 0 });
      if (artifact.type === 'json') process.stdout.write(JSON.stringify(artifact.value, null, 2) + '\n');
      else if (artifact.type === 'file') process.stdout.write(await readFile(await store.blobs.verified(artifact.digest, `${node} output ${flags.output}`)));
      else if (artifact.type === 'dir') process.stdout.write(`${await store.trees.materialize(artifact.digest, `${node} output ${flags.output}`)}\n`);
      else process.stdout.write(JSON.stringify({ type: 'records', count: artifact.count, meta: artifact.meta }, null, 2) + '\n');
    } else if (o.manifest) {
      process.stdout.write(flags.full || flags.json ? JSON.stringify(o.manifest, null, 2) + '\n' : manifestSummary(o.manifest, store.dir));
    } else {
      const last = store.lastKnown(opened.pipeline.spec.name, node);
      const lastManifest = last && store.manifest(last.key);
      process.stdout.write(`${node} is not cached: ${o.reason ? describeReason(o.reason) : o.state}\n`);
      if (lastManifest) process.stdout.write(`last result (key ${last.key.slice(0, 12)}):\n${flags.full || flags.json ? JSON.stringify(lastManifest, null, 2) + '\n' : manifestSummary(lastManifest, store.dir)}`);
      return 1;
    }
  } finally {
    await store.close();
  }
  return 0;
}
