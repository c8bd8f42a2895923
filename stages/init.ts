// init: a model's starting weights as a medpipe checkpoint (safetensors, PyTorch names and
// layouts). Sources: `random` (seeded torchvision / timm init), `file:<path>` (torchvision
// resnet50 / timm deit_small_patch16_224 naming, or a medpipe checkpoint), `hf:<owner>/
// <repo>[@rev]/<file>` (the Hugging Face hub cache, downloaded into it when missing) and `node` (the `weights` input,
// e.g. the output of DINO or the supervised proxy pretraining). The head is sized for the
// task; a 1-channel model takes the first input-channel slice of a pretrained stem.
// The checkpoint is computed in plain JS, so its bytes do not depend on the backend; the
// backend only runs a one-image forward to prove the weights load and give finite logits.

import path from 'node:path';
import { defineStage, type JSONObject, type JSONValue, type StageContext } from '../src/contract.js';
import { modelNameChoices, MODEL_NAMES } from '../src/ml/models/registry.js';

export interface InitParams {
  model: string;
  num_classes: number;
  channels: number;
  image_size?: number;
  source: string;
  seed: number;
  sha256?: string;
  zero_init_residual: boolean;
}

const DEFAULTS = { num_classes: 1000, channels: 3, source: 'random', seed: 0, zero_init_residual: false };

const SOURCE_PATTERN = '^(random|node|file:.+|hf:[^/@\\s]+/[^/@\\s]+(@[^/\\s]+)?/\\S+)$';

export default defineStage<InitParams>({
  kind: 'init',
  version: 1,
  description: 'Initial model weights (random, file:, hf: or another node\'s) as a safetensors checkpoint, head sized for the task',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['model'],
    properties: {
      model: { enum: [...modelNameChoices(), 'ResNet50', 'ResNet18', 'DeiT-S', 'DeiT-S/16'], description: `one of ${MODEL_NAMES.join(', ')}` },
      num_classes: { type: 'integer', minimum: 1, default: DEFAULTS.num_classes, description: '1 = one logit (binary, sigmoid)' },
      channels: { type: 'integer', enum: [1, 3], default: DEFAULTS.channels },
      image_size: { type: 'integer', minimum: 8, description: 'input size (default: the model\'s); ViT position embeddings are resampled to it' },
      source: { type: 'string', pattern: SOURCE_PATTERN, default: DEFAULTS.source },
      seed: { type: 'integer', default: DEFAULTS.seed, description: 'random init, and fresh heads of pretrained weights' },
      sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$', description: 'expected digest of the file: or hf: file' },
      zero_init_residual: { type: 'boolean', default: DEFAULTS.zero_init_residual },
    },
  },
  inputs: { weights: { type: 'file', optional: true, description: 'checkpoint from another stage (source: node)' } },
  outputs: { weights: 'file', info: 'json' },
  resources: { cpus: 1 },

  async fingerprint(params, ctx): Promise<JSONValue> {
    const source = params.source ?? DEFAULTS.source;
    if (source.startsWith('file:')) {
      const rel = source.slice(5);
      const abs = path.resolve(ctx.baseDir, rel);
      const digests = await ctx.hashFiles([abs]);
      return { file: rel, sha256: digests[abs] ?? null };
    }
    if (source.startsWith('hf:')) return { hf: source.slice(3), sha256: params.sha256?.toLowerCase() ?? null };
    return null;
  },

  async check(params, ctx) {
    const source = params.source ?? DEFAULTS.source;
    if (!source.startsWith('file:')) return [];
    const { access } = await import('node:fs/promises');
    const abs = path.resolve(ctx.baseDir, source.slice(5));
    try {
      await access(abs);
      return [];
    } catch {
      return [`init: weights file ${source.slice(5)} does not exist (looked at ${abs}); put the torchvision/timm safetensors file there`];
    }
  },

  async run(ctx: StageContext<InitParams>) {
    const p = { ...DEFAULTS, ...ctx.params };
    const [{ modelSpec, modelInfo }, { loadSource }, { writeCheckpoint, metaFor, parseMeta }, { initBackend }] = await Promise.all([
      import('../src/ml/models/registry.js'),
      import('../src/ml/weights/source.js'),
      import('../src/ml/weights/checkpoint.js'),
      import('../src/engine/backend.js'),
    ]);
    const task = { numClasses: p.num_classes, channels: p.channels, imageSize: p.image_size, zeroInitResidual: p.zero_init_residual };
    const spec = modelSpec(p.model, task);
    const info = modelInfo(p.model, task);

    let nodeFile: string | undefined;
    if (p.source === 'node') {
      if (!ctx.inputs.has('weights')) throw new Error(`init: source 'node' needs the weights input (e.g. inputs: {weights: dino.weights})`);
      nodeFile = await ctx.inputs.file('weights');
    } else if (ctx.inputs.has('weights')) {
      throw new Error(`init: a weights input is connected but source is '${p.source}': set source: node to use it`);
    }

    ctx.progress(`${spec.name}: loading ${p.source}`);
    const loaded = await loadSource(spec, p.source, {
      seed: p.seed,
      baseDir: ctx.baseDir,
      sha256: p.sha256,
      nodeFile,
      download: {
        signal: ctx.signal,
        onProgress: (done, total) => ctx.progress(`downloading ${p.source}: ${(done / 2 ** 20).toFixed(1)}${total ? ` of ${(total / 2 ** 20).toFixed(1)}` : ''} MiB`),
      },
    });
    for (const note of loaded.notes) ctx.log(note);

    const engine = await initBackend();
    ctx.provenance({ engine: { choice: engine.choice, backend: engine.backend, threads: engine.threads, versions: engine.versions, details: engine.details } });
    ctx.progress(`${spec.name}: checking a forward pass on ${engine.backend}`);
    const check = await forwardCheck(spec, loaded.state);
    if (!check.finite) throw new Error(`init: ${spec.name} with weights from ${p.source} gives non-finite logits (NaN or Inf in the file?)`);

    const upstream = nodeFile === undefined ? undefined : await upstreamSource(nodeFile, parseMeta);
    const label = p.source === 'random' ? `random(seed=${p.seed})` : p.source === 'node' ? `node(${upstream ?? 'unknown'})` : p.source;
    const extra: Record<string, string> = { seed: String(p.seed) };
    if (loaded.file) extra.source_sha256 = loaded.file.sha256;
    const out = path.join(ctx.workdir, 'model.safetensors');
    await writeCheckpoint(out, spec, loaded.state, metaFor(spec, label, extra));
    await ctx.outputs.file('weights', out, { filename: `${spec.name}.safetensors` });

    const value: JSONObject = {
      model: spec.name,
      family: info.family,
      parameters: info.parameters,
      backbone_parameters: info.backboneParameters,
      num_classes: info.numClasses,
      channels: info.channels,
      image_size: info.imageSize,
      source: label,
      seed: p.seed,
      source_sha256: loaded.file?.sha256 ?? null,
      reinitialised: p.source === 'random' ? 'all' : loaded.reinitialised,
      skipped: loaded.skipped,
      notes: loaded.notes,
      check: { backend: engine.backend, logits_shape: check.shape, finite: check.finite },
    };
    if (loaded.file?.url) value.url = loaded.file.url;
    // The commit an hf: revision resolved to: what `main` meant when these weights were taken.
    if (loaded.file?.commit) {
      value.source_commit = loaded.file.commit;
      ctx.provenance({ hf_commit: loaded.file.commit });
    }
    ctx.outputs.json('info', value as JSONValue);
  },
});

/** One image of zeros through the model in eval mode: the weights load and are sane. */
async function forwardCheck(
  spec: import('../src/ml/models/types.js').ModelSpec,
  state: import('../src/ml/models/state.js').StateDict,
): Promise<{ shape: number[]; finite: boolean }> {
  const tf = await import('@tensorflow/tfjs');
  const { createParams, disposeParams } = await import('../src/ml/models/params.js');
  const { forward } = await import('../src/ml/models/forward.js');
  const params = createParams(spec, state);
  try {
    const s = spec.config.imageSize;
    const logits = tf.tidy(() => forward(spec, params, tf.zeros([1, s, s, spec.config.channels]) as import('@tensorflow/tfjs').Tensor4D, { training: false }));
    const values = await logits.data();
    logits.dispose();
    return { shape: logits.shape, finite: values.every((v) => Number.isFinite(v)) };
  } finally {
    disposeParams(params);
  }
}

async function upstreamSource(file: string, parseMeta: typeof import('../src/ml/weights/checkpoint.js').parseMeta): Promise<string | undefined> {
  const { SafetensorsReader } = await import('../src/ml/safetensors.js');
  const reader = await SafetensorsReader.open(file);
  try {
    return parseMeta(reader.metadata)?.source;
  } finally {
    await reader.close();
  }
}
