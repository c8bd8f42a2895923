import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let cached: Record<string, string> | undefined;

function versionOf(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** Versions recorded in every manifest's provenance (never in a key). */
export function packageVersions(): Record<string, string> {
  if (cached) return cached;
  const out: Record<string, string> = { node: process.versions.node };
  const medpipe = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  out['medpipe'] = medpipe.version;
  for (const pkg of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sharp', 'lmdb']) {
    const v = versionOf(pkg);
    if (v) out[pkg] = v;
  }
  cached = out;
  return out;
}
