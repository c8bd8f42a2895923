// The harness the families' step-graph tests share (vit-step, resnet-step): a model's
// tape-free training step (trainStep) against the tfjs path it replaces (forward() under
// tf.variableGrads with the fused cross-entropy), on the wasm backend with the native kernels
// and on the reference cpu backend. One copy, so that both families are held to the same
// comparison: the same soft labels, the same read-out of loss, gradients and buffers, the
// same bit-for-bit and tolerance checks.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/engine/backend.js';
import { softmaxCrossEntropy } from '../../src/engine/fused-ops.js';
import { loadNative, nativeStatus } from '../../src/engine/native.js';
import { setNativeKernels } from '../../src/engine/wasm-kernels.js';
import { forward, trainStep } from '../../src/ml/models/forward.js';
import { createParams, disposeParams, trainableVariables, type ParamMap } from '../../src/ml/models/params.js';
import { modelSpec } from '../../src/ml/models/registry.js';
import { initState } from '../../src/ml/models/state.js';
import type { ModelSpec } from '../../src/ml/models/types.js';
import { Random, relErr } from './backend-compare.js';

export type Backend = 'cpu' | 'wasm';
export type How = 'graph' | 'tape';

/**
 * Why the file's tests are skipped (no native kernels), or false; registers the `before` that
 * puts tfjs on wasm with the native kernels on, which the step graphs need.
 */
export function stepGraphSetup(file: string): string | false {
  const skip = loadNative() === undefined ? `native kernels not available: ${nativeStatus()}` : false;
  if (skip) console.log(`# ${file}: SKIPPED — ${skip}`);
  before(async () => {
    const info = await initBackend({ prefer: 'wasm' });
    assert.equal(info.backend, 'wasm');
    if (!skip) assert.equal(setNativeKernels(true), true);
  });
  return skip;
}

/** One model at one input size and batch. */
export interface Case {
  model: string;
  size: number;
  batch: number;
  classes: number;
  /** Also against the cpu backend (slow there for the large models). */
  cpu: boolean;
}

export const describeCase = (c: Case): string => `${c.model}@${c.size} batch ${c.batch}`;

/** The registered model's spec for the case. */
export function caseSpec(c: Case): ModelSpec {
  return modelSpec(c.model, { numClasses: c.classes, imageSize: c.size });
}

/** Seeded weights from `spec`'s init; with `move`, each float tensor moved by a seeded amount
 *  (so that LayerNorm's weights 1 and biases 0 do not hide a gradient read from the wrong layer). */
export function seededParams(spec: ModelSpec, seed: number, move = false): ParamMap {
  const params = createParams(spec, initState(spec, seed));
  if (move) {
    const rng = new Random(seed * 101);
    for (const v of params.values()) {
      if (v.dtype === 'float32') tf.tidy(() => v.assign(tf.add(v, tf.tensor(rng.values(v.size), v.shape).mul(0.2))));
    }
  }
  return params;
}

/** A seeded NHWC batch for the case. */
export function caseInput(c: Case, seed: number): tf.Tensor4D {
  return tf.tensor4d(new Random(seed).values(c.batch * c.size * c.size * 3), [c.batch, c.size, c.size, 3]);
}

/** One-hot labels, but soft on the first row: the loss's gradient reads every label value. */
export function softLabels(batch: number, classes: number): tf.Tensor2D {
  const labels = Array.from({ length: batch }, (_, i) => (i * 7 + 1) % classes);
  return tf.tensor2d(labels.flatMap((l, i) => Array.from({ length: classes }, (_, k) => (i === 0 ? (k === l ? 0.7 : 0.3 / (classes - 1)) : k === l ? 1 : 0))), [batch, classes]);
}

export interface StepOptions {
  /** Passed to trainStep and forward (ResNet's BatchNorm running estimates). */
  updateStats?: boolean;
  /** The spec (default: the case's registered model). */
  spec?: ModelSpec;
  /** Seeded weights moved off their init (see seededParams). */
  move?: boolean;
  /** Every parameter must be trainable (a family without buffers). */
  noBuffers?: boolean;
}

/**
 * Loss, every trainable parameter's gradient (`grad <name>`) and every buffer's value after
 * the step (its name), from weights seeded 11, through the step graph or the tape.
 */
export function runStep(c: Case, backend: Backend, how: How, opts: StepOptions = {}): Map<string, Float32Array> {
  tf.setBackend(backend);
  const spec = opts.spec ?? caseSpec(c);
  const params = seededParams(spec, 11, opts.move);
  const stats = opts.updateStats === undefined ? {} : { updateStats: opts.updateStats };
  const out = new Map<string, Float32Array>();
  try {
    tf.tidy(() => {
      const x = caseInput(c, c.size * 31 + c.batch);
      const onehot = softLabels(c.batch, c.classes);
      const r = how === 'graph'
        ? trainStep(spec, params, x, onehot, 1 / c.batch, stats)
        : tf.variableGrads(() => {
          const logits = forward(spec, params, x, { training: true, ...stats });
          return softmaxCrossEntropy(tf, logits, onehot, 1 / c.batch) ?? (tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar);
        }, trainableVariables(params));
      assert.ok(r !== undefined, `${c.model}: the step graph did not run on ${backend}`);
      out.set('loss', Float32Array.from(r.value.dataSync()));
      for (const [name, v] of params) {
        if (opts.noBuffers) assert.ok(v.trainable, `${name} is not trainable`);
        if (v.trainable) {
          const g: tf.Tensor | undefined = r.grads[v.name];
          assert.ok(g !== undefined, `${how}: no gradient for ${name}`);
          assert.deepEqual(g.shape, v.shape, `gradient shape of ${name}`);
          out.set(`grad ${name}`, Float32Array.from(g.dataSync()));
        } else out.set(name, Float32Array.from(v.dataSync()));
      }
      assert.equal(Object.keys(r.grads).length, trainableVariables(params).length, `${how}: gradients of other variables`);
    });
    return out;
  } finally {
    disposeParams(params);
  }
}

/** The same names, and the same values bit for bit. */
export function assertBitEqual(got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [name, w] of want) assert.deepEqual(got.get(name), w, name);
}

/** Every value of `want` within `tol` (relErr) in `got`. */
export function assertWithin(got: Map<string, Float32Array>, want: Map<string, Float32Array>, tol: number): void {
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [name, w] of want) {
    const e = relErr(got.get(name)!, w, name);
    assert.ok(e < tol, `${name}: rel. error ${e.toExponential(2)}`);
  }
}

/**
 * For each case: the step graph against the tape on wasm, bit for bit, and (`cpu` cases)
 * against the cpu backend's tape within the whole-step tolerance of engine-native.test.ts.
 * `what` names what is compared in the test titles, `title` the case.
 */
export function stepGraphTests<C extends Case>(family: string, what: string, cases: readonly C[], skip: string | false, opts: (c: C) => StepOptions = () => ({}), title: (c: C) => string = describeCase): void {
  for (const c of cases) {
    test(`the ${family} step graph gives the tfjs path's ${what} bit for bit on wasm (${title(c)})`, { skip }, () => {
      assertBitEqual(runStep(c, 'wasm', 'graph', opts(c)), runStep(c, 'wasm', 'tape', opts(c)));
    });
    if (c.cpu) test(`the ${family} step graph matches the cpu backend's tfjs step (${title(c)})`, { skip }, () => {
      assertWithin(runStep(c, 'wasm', 'graph', opts(c)), runStep(c, 'cpu', 'tape', opts(c)), 2e-3);
    });
  }
}

/** `fn` with MEDPIPE_STEP_GRAPH=0 (enabled false) or as it was; the variable restored after. */
export function withStepGraph<R>(enabled: boolean, fn: () => R): R {
  const saved = process.env['MEDPIPE_STEP_GRAPH'];
  if (!enabled) process.env['MEDPIPE_STEP_GRAPH'] = '0';
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env['MEDPIPE_STEP_GRAPH'];
    else process.env['MEDPIPE_STEP_GRAPH'] = saved;
  }
}

/** Whether trainStep ran ('ran') or left the step to the tfjs path ('declined') for a batch of two zero images. */
export function stepRuns(model: string, classes: number, backend: Backend, opts: { configSize?: number; size?: number } = {}): 'ran' | 'declined' {
  tf.setBackend(backend);
  const size = opts.size ?? 32;
  const spec = modelSpec(model, { numClasses: classes, imageSize: opts.configSize ?? 32 });
  const params = createParams(spec, initState(spec, 1));
  try {
    return tf.tidy(() => {
      const r = trainStep(spec, params, tf.zeros([2, size, size, 3]), tf.tensor2d(Array.from({ length: 2 * classes }, (_, i) => (i % classes === 0 ? 1 : 0)), [2, classes]), 0.5);
      return r === undefined ? 'declined' : 'ran';
    });
  } finally {
    disposeParams(params);
  }
}

/**
 * `fn` over the case's weights seeded `seed` (default 12; moved with `move`) and its input
 * seeded `inputSeed` (default size * 17 + batch), on `backend`, inside a tidy, through the graph or (graph false,
 * MEDPIPE_STEP_GRAPH=0) the tfjs forward; the weights are freed after.
 */
export function evalRun<R extends tf.TensorContainer>(c: Case, backend: Backend, graph: boolean, opts: { spec?: ModelSpec; seed?: number; move?: boolean; inputSeed?: number }, fn: (spec: ModelSpec, params: ParamMap, x: tf.Tensor4D) => R): R {
  tf.setBackend(backend);
  const spec = opts.spec ?? caseSpec(c);
  const params = seededParams(spec, opts.seed ?? 12, opts.move);
  try {
    return withStepGraph(graph, () => tf.tidy(() => fn(spec, params, caseInput(c, opts.inputSeed ?? c.size * 17 + c.batch))));
  } finally {
    disposeParams(params);
  }
}

/** `fn` on wasm leaves no wasm buffer (and, with `tensors`, no tensor) behind. */
export function assertFrees<R>(fn: () => R, tensors = true): R {
  tf.setBackend('wasm');
  const be = tf.backend() as BackendWasm;
  const ids = be.dataIdMap.numDataIds();
  const count = tf.memory().numTensors;
  const r = fn();
  tf.setBackend('wasm');
  assert.equal(be.dataIdMap.numDataIds(), ids, 'wasm buffers left behind');
  if (tensors) assert.equal(tf.memory().numTensors, count, 'tensors left behind');
  return r;
}

/**
 * With `frozen` set untrainable, the step graph over a batch of two 32 px images (labels the
 * flat one-hot `onehot`) gives gradients of just the trainable parameters, as tf.variableGrads
 * over them does, and those equal the tape's bit for bit. Frees `params`.
 */
export function assertFrozenLikeTape(spec: ModelSpec, params: ParamMap, frozen: readonly string[], onehot: number[], opts: { updateStats?: boolean } = {}): void {
  tf.setBackend('wasm');
  for (const name of frozen) params.get(name)!.trainable = false;
  try {
    tf.tidy(() => {
      const x = tf.tensor4d(new Random(9).values(2 * 32 * 32 * 3), [2, 32, 32, 3]);
      const labels = tf.tensor2d(onehot, [2, onehot.length / 2]);
      const r = trainStep(spec, params, x, labels, 0.5, opts);
      assert.ok(r !== undefined);
      const names = (g: tf.NamedTensorMap) => Object.keys(g).sort();
      const want = tf.variableGrads(() => softmaxCrossEntropy(tf, forward(spec, params, x, { training: true, ...opts }), labels, 0.5)!, trainableVariables(params));
      assert.deepEqual(names(r.grads), names(want.grads));
      assert.equal(names(r.grads).length, trainableVariables(params).length);
      for (const n of names(want.grads)) assert.deepEqual(r.grads[n]!.dataSync(), want.grads[n]!.dataSync(), n);
    });
  } finally {
    disposeParams(params);
  }
}
