// `npm run bench`: every performance figure of the project, measured side by side on this
// machine. Sections are independent; a failing one is reported and the rest still run.
import { cpus } from 'node:os';
import { benchCore } from './core.js';
import { benchBf16 } from './bf16.js';
import { benchData } from './data.js';
import { benchEngine } from './engine.js';
import { benchGpu } from './gpu.js';
import { benchRemote } from './remote.js';

const sections: [string, (log: (line: string) => void) => Promise<void>][] = [
  ['framework core', benchCore],
  ['data', benchData],
  ['remote cache', benchRemote],
  ['engine: training and inference vs PyTorch', benchEngine],
  ['engine bf16: precision bf16 vs fp32', benchBf16],
  ['gpu: medpipe webgpu vs PyTorch fp32 / AMP on the same GPU', benchGpu],
];

const only = process.argv.slice(2);
console.log(`medpipe bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${new Date().toISOString()}`);
let failed = 0;
for (const [name, run] of sections) {
  if (only.length > 0 && !only.some((o) => name.includes(o))) continue;
  console.log(`\n## ${name}`);
  try {
    await run((line) => console.log(`  ${line}`));
  } catch (err) {
    failed++;
    console.log(`  FAILED: ${(err as Error).message}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
