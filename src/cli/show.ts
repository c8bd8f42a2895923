import type { JSONValue } from '../contract.js';
import type { Artifact, Manifest } from '../store/artifacts.js';
import { table } from './output.js';

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
