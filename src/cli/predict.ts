// `pipeline predict`: class probabilities for new images from a trained checkpoint, prepared
// exactly as the model's training data was (decode + resize to the record size, then the eval
// transform and the data set's normalisation, all read from the checkpoint's metadata).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DataRecord, JSONObject, RecordReader } from '../contract.js';
import { requireNode, selectNodes } from '../graph/select.js';
import { planNodes } from '../run/plan.js';
import { Store } from '../store/store.js';
import { existingCacheDir } from './options.js';
import { ConfigError } from '../util/errors.js';
import { DecodeError } from '../data/decode-error.js';
import { openPipeline, type CliEnv } from './session.js';
import { shellCommand } from '../util/shell.js';

export interface PredictFlags {
  weights: string;
  cache?: string;
  format: 'csv' | 'json';
  set: string[];
}

interface Preprocessing {
  size: number;
  channels: 1 | 3;
  mean: number[];
  std: number[];
  classes: string[] | null;
  eval: { resize: number; crop: number };
}

/** A file path, or `pipeline.yaml:node` for the cached weights output of a pipeline node. */
async function weightsPath(spec: string, flags: PredictFlags, env: CliEnv): Promise<string> {
  const at = spec.lastIndexOf(':');
  const looksLikeNode = at > 0 && /\.ya?ml$/.test(spec.slice(0, at));
  if (!looksLikeNode) {
    if (!existsSync(spec)) throw new ConfigError(`-w ${spec}: no such file (give a .safetensors checkpoint, or pipeline.yaml:node for a cached finetune/pretrain node's weights)`);
    return resolve(spec);
  }
  const [file, node] = [spec.slice(0, at), spec.slice(at + 1)];
  const opened = await openPipeline(file, flags.set, env);
  requireNode(opened.pipeline, file, node);
  // predict only reads the cache: a mistyped --cache must not become a new, empty one.
  const store = new Store(existingCacheDir(flags.cache));
  try {
    const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets: [node] }));
    const manifest = outcomes.get(node)?.manifest;
    const weights = manifest?.outputs['weights'];
    // The command to paste names the same variant and cache, or it would compute another one.
    const sameVariant = [...flags.set.flatMap((s) => ['--set', s]), ...(flags.cache !== undefined ? ['--cache', flags.cache] : [])];
    if (!manifest) throw new Error(`${node} is not cached: run \`${shellCommand('pipeline', 'run', file, node, ...sameVariant)}\` first`);
    if (weights?.type !== 'file') throw new ConfigError(`-w ${spec}: ${node} (kind ${manifest.kind}) has no weights file output; name a finetune or pretrain node`);
    return store.blobs.verified(weights.digest, `weights of ${node}`);
  } finally {
    await store.close();
  }
}

export async function predictCommand(images: string[], flags: PredictFlags, env: CliEnv, write: (s: string) => void): Promise<number> {
  const path = await weightsPath(flags.weights, flags, env);
  const [{ readWeightsFile }, { decodeFile }, { BACKEND_ORDER, initBackend, parseBackendChoice }, { requestedBackend }, { loadModel, predict }] = await Promise.all([
    import('../ml/weights/checkpoint.js'),
    import('../data/decode.js'),
    import('../engine/backend.js'),
    import('../engine/activate.js'),
    import('../ml/train/model-io.js'),
  ]);
  const raw = (await readWeightsFile(path)).metadata['preprocessing'];
  if (!raw) throw new Error(`${flags.weights}: the checkpoint does not record its preprocessing (only finetune/pretrain checkpoints do)`);
  const prep = JSON.parse(raw) as Preprocessing;

  const records: DataRecord[] = [];
  const problems: string[] = [];
  for (const image of images) {
    try {
      records.push({ data: await decodeFile(resolve(image), image, { size: prep.size, channels: prep.channels }), meta: { id: image, label: 0 } });
    } catch (err) {
      // A DecodeError's message names the file already.
      problems.push(err instanceof DecodeError ? err.message : `${image}: ${(err as Error).message}`);
    }
  }
  // Images that cannot be read are bad input (exit 2), like any other file the user named.
  if (problems.length > 0) throw new ConfigError(`cannot read ${problems.length} image(s):\n  ${problems.join('\n  ')}`);
  const meta: JSONObject = { shape: [prep.size, prep.size, prep.channels], mean: prep.mean, std: prep.std };
  const reader: RecordReader = {
    count: records.length,
    meta,
    get: (i) => records[i]!,
    *iterate(a = 0, b = records.length) {
      for (let i = a; i < b; i++) yield records[i]!;
    },
  };

  // 'auto' here leaves WebGPU out: a few images do not need a GPU, and merely looking for an
  // adapter makes Dawn print its limit warnings on every call of a CPU-only machine.
  // MEDPIPE_BACKEND=webgpu (or any backend it names) is still honoured.
  const wanted = requestedBackend('auto');
  const engine = await initBackend({ prefer: wanted === 'auto' ? BACKEND_ORDER.filter((c) => c !== 'webgpu') : parseBackendChoice(wanted) });
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend(engine.backend);
  const model = await loadModel(path, {}, 0);
  const preds = await predict(tf, model, reader, [...records.keys()], prep.eval, 16);
  const k = preds.numClasses;
  const names = k === 1 ? [prep.classes?.[1] ?? 'positive'] : Array.from({ length: k }, (_, i) => prep.classes?.[i] ?? `class_${i}`);
  const rows = preds.indices.map((i, r) => {
    const probs = Array.from(preds.probs.subarray(r * k, (r + 1) * k));
    const predicted = k === 1 ? (probs[0]! >= 0.5 ? (prep.classes?.[1] ?? '1') : (prep.classes?.[0] ?? '0')) : names[probs.indexOf(Math.max(...probs))]!;
    return { image: images[i]!, probs, predicted };
  });
  if (flags.format === 'json') {
    write(JSON.stringify(rows.map((r) => ({ image: r.image, predicted: r.predicted, probabilities: Object.fromEntries(names.map((n, j) => [n, r.probs[j]])) })), null, 2) + '\n');
  } else {
    const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    write([['image', ...names, 'predicted'].map(q).join(','), ...rows.map((r) => [q(r.image), ...r.probs.map((p) => p.toFixed(6)), q(r.predicted)].join(','))].join('\n') + '\n');
  }
  return 0;
}
