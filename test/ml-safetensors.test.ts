import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bf16BitsToFloat,
  deserialize,
  f16BitsToFloat,
  floatToBF16Bits,
  floatToF16Bits,
  fromFloat32,
  readSafetensorsFile,
  SafetensorsReader,
  serialize,
  toFloat32,
  writeSafetensorsFile,
  type Tensor,
} from '../src/ml/safetensors.js';

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];
const u64 = (n: number): number[] => [n, 0, 0, 0, 0, 0, 0, 0];
const SPACE = 0x20;

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'medpipe-st-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// The float32 values 0..5, little-endian, as bytes.
const F32_0_TO_5 = [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64];

test('writes exactly the bytes of the format: 64-byte header needs no padding', () => {
  const json = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  assert.equal(json.length, 64);
  const expected = [...u64(64), ...ascii(json), ...F32_0_TO_5];
  const out = serialize({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
  assert.deepEqual([...out], expected);
  const back = deserialize(new Uint8Array(expected));
  assert.deepEqual([...(back.tensors.get('attn.0')!.data as Float32Array)], [0, 1, 2, 3, 4, 5]);
});

test('pads the header with spaces to a multiple of 8, as the Rust writer does', () => {
  const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  assert.equal(json.length, 65);
  const expected = [...u64(72), ...ascii(json), ...new Array<number>(7).fill(SPACE), ...F32_0_TO_5];
  const out = serialize({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
  assert.deepEqual([...out], expected);

  assert.deepEqual([...serialize({})], [...u64(8), ...ascii('{}'), ...new Array<number>(6).fill(SPACE)]);
  const meta = '{"__metadata__":{"framework":"pt"}}';
  assert.deepEqual(
    [...serialize({}, { framework: 'pt' })],
    [...u64(40), ...ascii(meta), ...new Array<number>(40 - meta.length).fill(SPACE)],
  );
});

test('orders tensors by dtype alignment then name, metadata first with sorted keys', () => {
  const out = serialize(
    {
      b16: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      z: { dtype: 'F32', shape: [], data: new Float32Array([2]) },
      a: { dtype: 'F32', shape: [2], data: new Float32Array([3, 4]) },
      idx: { dtype: 'I64', shape: [1], data: new BigInt64Array([-5n]) },
      m: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    },
    { z: '1', a: '2' },
  );
  const n = Number(new DataView(out.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = Buffer.from(out.subarray(8, 8 + n)).toString('utf8').trimEnd();
  assert.equal(
    header,
    '{"__metadata__":{"a":"2","z":"1"},' +
      '"idx":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
      '"z":{"dtype":"F32","shape":[],"data_offsets":[16,20]},' +
      '"b16":{"dtype":"F16","shape":[1],"data_offsets":[20,22]},' +
      '"m":{"dtype":"BOOL","shape":[3],"data_offsets":[22,25]}}',
  );
  const back = deserialize(out);
  assert.deepEqual(back.metadata, { a: '2', z: '1' });
  assert.deepEqual([...back.tensors.keys()], ['idx', 'a', 'z', 'b16', 'm']);
  assert.deepEqual([...(back.tensors.get('idx')!.data as BigInt64Array)], [-5n]);
  assert.deepEqual(back.tensors.get('z')!.shape, []);
  assert.deepEqual([...toFloat32(back.tensors.get('b16')!)], [1]);
});

test('round trip of every dtype through a file, and the streaming reader', async () => {
  const tensors: Record<string, Tensor> = {
    f32: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1.5, -2, 3, 0, 1e-20, 7]) },
    f64: { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -1]) },
    f16: fromFloat32(new Float32Array([1, -0.5, 65504, 0.1]), [4], 'F16'),
    bf16: fromFloat32(new Float32Array([1, -0.5, 3.140625]), [3], 'BF16'),
    i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 40n), 3n]) },
    u64: { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 63n]) },
    i32: { dtype: 'I32', shape: [1, 1], data: new Int32Array([-7]) },
    u32: { dtype: 'U32', shape: [1], data: new Uint32Array([4e9]) },
    i16: { dtype: 'I16', shape: [1], data: new Int16Array([-300]) },
    u16: { dtype: 'U16', shape: [1], data: new Uint16Array([60000]) },
    i8: { dtype: 'I8', shape: [2], data: new Int8Array([-1, 1]) },
    u8: { dtype: 'U8', shape: [3], data: new Uint8Array([0, 128, 255]) },
    bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  await withTmp(async (dir) => {
    const path = join(dir, 'w.safetensors');
    await writeSafetensorsFile(path, tensors, { format: 'pt', note: 'ünïcode' });
    const bytes = new Uint8Array(await readFile(path));
    assert.deepEqual(bytes, serialize(tensors, { format: 'pt', note: 'ünïcode' }));
    const all = await readSafetensorsFile(path);
    assert.equal(all.metadata.note, 'ünïcode');
    for (const [name, t] of Object.entries(tensors)) {
      const got = all.tensors.get(name)!;
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.deepEqual([...got.data], [...t.data], name);
    }
    const reader = await SafetensorsReader.open(path);
    try {
      const f16 = await reader.readFloat32('f16');
      assert.deepEqual([...f16.data], [1, -0.5, 65504, f16BitsToFloat(floatToF16Bits(0.1))]);
      assert.ok(Math.abs(f16.data[3] - 0.1) < 1e-4);
      assert.deepEqual([...(await reader.readFloat32('bf16')).data], [1, -0.5, 3.140625]);
      assert.deepEqual(reader.info('i32'), { dtype: 'I32', shape: [1, 1], dataOffsets: reader.info('i32').dataOffsets });
      await assert.rejects(reader.read('nope'), /w\.safetensors: tensor 'nope': not in this file/);
    } finally {
      await reader.close();
    }
  });
});

test('half-precision conversions round to nearest even', () => {
  const cases: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [2 ** -14, 0x0400],
    [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [0.1, 0x2e66],
    [1 / 3, 0x3555], [Infinity, 0x7c00], [-0, 0x8000], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
  ];
  for (const [v, bits] of cases) assert.equal(floatToF16Bits(v), bits, `f16(${v})`);
  assert.ok(Number.isNaN(f16BitsToFloat(floatToF16Bits(NaN))));
  for (let h = 0; h < 0x10000; h++) {
    const v = f16BitsToFloat(h);
    if (!Number.isNaN(v)) assert.equal(floatToF16Bits(v), h, `f16 bits ${h}`);
  }
  assert.equal(floatToBF16Bits(1), 0x3f80);
  assert.equal(floatToBF16Bits(0.1), 0x3dcd); // 0x3dcccccd rounds up
  assert.equal(floatToBF16Bits(1 + 2 ** -8), 0x3f80); // tie to even
  assert.equal(floatToBF16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(bf16BitsToFloat(0xc040), -3);
  assert.ok(Number.isNaN(bf16BitsToFloat(floatToBF16Bits(NaN))));
});

test('clear errors on truncated and corrupt files, naming the file and the tensor', async () => {
  await withTmp(async (dir) => {
    const path = join(dir, 'bad.safetensors');
    const good = serialize({
      'conv1.weight': { dtype: 'F32', shape: [4, 3], data: new Float32Array(12) },
      'fc.bias': { dtype: 'F16', shape: [5], data: new Uint16Array(5) },
    });

    await writeFile(path, good.subarray(0, 5));
    await assert.rejects(SafetensorsReader.open(path), /bad\.safetensors: only 5 bytes/);

    await writeFile(path, good.subarray(0, 40));
    await assert.rejects(SafetensorsReader.open(path), /bad\.safetensors: truncated file: header length \d+ runs past/);

    await writeFile(path, good);
    await truncate(path, good.length - 3);
    await assert.rejects(readSafetensorsFile(path), /bad\.safetensors: tensor 'fc\.bias': truncated file/);

    await writeFile(path, Buffer.concat([good, Buffer.from([0, 0])]));
    await assert.rejects(readSafetensorsFile(path), /bad\.safetensors: 2 unexpected bytes after the last tensor/);

    const corrupt = new Uint8Array(good);
    corrupt[8] = 0x5b; // '{' -> '['
    await writeFile(path, corrupt);
    await assert.rejects(readSafetensorsFile(path), /bad\.safetensors: header is not valid JSON/);

    await writeFile(path, Buffer.from('ffffffffffffffff', 'hex'));
    await assert.rejects(readSafetensorsFile(path), /bad\.safetensors: header length \d+ exceeds/);
  });

  const hand = (json: string, dataBytes: number): Uint8Array =>
    new Uint8Array([...u64(json.length), ...ascii(json), ...new Array<number>(dataBytes).fill(0)]);
  assert.throws(
    () => deserialize(hand('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', 12), 'x.st'),
    /x\.st: tensor 'w': F32 \[2,2\] needs 16 bytes but data_offsets span 12/,
  );
  assert.throws(
    () => deserialize(hand('{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), 'x.st'),
    /x\.st: tensor 'w': data_offsets \[4, 8\] do not continue from byte 0/,
  );
  assert.throws(
    () => deserialize(hand('{"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', 1), 'x.st'),
    /x\.st: tensor 'w': unknown dtype "Q4"/,
  );
  assert.throws(
    () => deserialize(hand('{"__metadata__":{"n":1}}', 0), 'x.st'),
    /x\.st: __metadata__ value of 'n' is not a string/,
  );
  // Older writers put tensors in name order with any offsets order: accepted.
  const unordered = deserialize(
    hand('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 2),
  );
  assert.deepEqual([...unordered.tensors.keys()], ['b', 'a']);
  assert.throws(
    () => serialize({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
    /tensor 'w': shape \[3\] has 3 elements but the data has 2/,
  );
  assert.throws(
    () => serialize({ w: { dtype: 'F16', shape: [1], data: new Float32Array(1) } as unknown as Tensor }),
    /tensor 'w': F16 data must be a Uint16Array/,
  );
});

const python = spawnSync('python3', ['-c', 'import safetensors.numpy, numpy'], { encoding: 'utf8' });
const havePythonSafetensors = python.status === 0;

test(
  'interoperates with the reference Python implementation',
  { skip: havePythonSafetensors ? false : 'python3 safetensors not installed (the byte-exact fixtures above cover the format)' },
  async () => {
    await withTmp(async (dir) => {
      const fromPy = join(dir, 'py.safetensors');
      const fromUs = join(dir, 'us.safetensors');
      const script = `
import numpy as np, sys
from safetensors.numpy import save_file, load_file
save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "h": np.array([1.0, 0.1], dtype=np.float16),
           "i": np.array([-3, 4], dtype=np.int64)}, sys.argv[1], metadata={"format": "np"})
t = load_file(sys.argv[2])
assert t["x"].dtype == np.float32 and t["x"].tolist() == [[1.5, -2.0]], t
assert t["k"].dtype == np.int32 and t["k"].tolist() == [7]
`;
      await writeSafetensorsFile(fromUs, {
        x: { dtype: 'F32', shape: [1, 2], data: new Float32Array([1.5, -2]) },
        k: { dtype: 'I32', shape: [1], data: new Int32Array([7]) },
      });
      const r = spawnSync('python3', ['-c', script, fromPy, fromUs], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const got = await readSafetensorsFile(fromPy);
      assert.deepEqual([...toFloat32(got.tensors.get('w')!)], [0, 1, 2, 3, 4, 5]);
      assert.deepEqual([...toFloat32(got.tensors.get('h')!)], [1, f16BitsToFloat(floatToF16Bits(0.1))]);
      assert.deepEqual([...(got.tensors.get('i')!.data as BigInt64Array)], [-3n, 4n]);
      assert.equal(got.metadata.format, 'np');
    });
  },
);
