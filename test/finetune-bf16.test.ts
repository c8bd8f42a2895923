// precision: bf16 through the CLI on a tiny synthetic APTOS: a finetune node that asks for it
// trains (finite losses), has its own key (bf16 changes results), and says so in provenance;
// on an engine without bf16 it fails naming why, and nothing is cached under the bf16 key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadNative } from '../src/engine/native.js';
import { sandbox, tinyAptos } from './support/toy.js';

const nat = loadNative();
const skip = nat === undefined ? 'native kernels not built' : !nat.info().bf16 ? `no AVX512_BF16 on this CPU (${nat.info().isa})` : false;

const pipeline = (extra: string): string => tinyAptos('bf', { count: 40, seed: 5 }) + `  init:
    uses: init
    with: {model: resnet_demo, num_classes: 5, image_size: 24, seed: 1}
  finetune:
    uses: finetune
    inputs: {data: preprocess.records, split: split.split, weights: init.weights}
    with: {metric: kappa, epochs: 2, batch_size: 8, warmup_iters: 2, lr: 0.001, seed: 7${extra}}
`;

test('finetune with precision: bf16 trains under its own key, records it, and is refused where it cannot run', { skip, timeout: 300_000 }, async () => {
  const s = sandbox();
  const fp32 = s.write('fp32.yaml', pipeline(''));
  const bf16 = s.write('bf16.yaml', pipeline(', precision: bf16'));
  assert.equal((await s.cli(['run', fp32])).code, 0);
  const r = await s.cli(['run', bf16]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const a = await s.show(fp32, 'finetune');
  const b = await s.show(bf16, 'finetune');
  assert.notEqual(b.key, a.key, 'bf16 is in the key');
  const prov = (m: typeof a): { gemm?: string } => ((m as unknown as { provenance: { reported: { precision?: { gemm?: string } } } }).provenance.reported.precision ?? {});
  assert.equal(prov(b).gemm, 'bf16');
  assert.equal(prov(a).gemm, 'fp32');
  const losses = (m: typeof a): number[] => (m.outputs['curves']!.value as { epochs: { train_loss: number }[] }).epochs.map((e) => e.train_loss);
  assert.ok(losses(b).every(Number.isFinite));
  assert.notDeepEqual(losses(b), losses(a), 'bf16 changed the arithmetic');
  // The cpu backend has no bf16: the node fails before training, saying why (a fresh cache:
  // the backend is not in the key, so the first one would answer from its bf16 result).
  const t = sandbox();
  const cpu = t.write('cpu.yaml', pipeline(', precision: bf16, backend: cpu'));
  const refused = await t.cli(['run', cpu]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stdout + refused.stderr, /precision: bf16 cannot run here: the cpu backend computes in fp32 only/);
});
