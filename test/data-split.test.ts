// Python's random.Random and the split modes; reference values printed by CPython 3.11.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PyRandom } from '../src/data/pyrandom.js';
import { listsSplit, paperSplit, splitCounts, stratifiedSplit } from '../src/data/split.js';

test('PyRandom matches CPython random.Random for random(), getrandbits(), randrange()', () => {
  const r = new PyRandom(42);
  assert.deepEqual([r.random(), r.random(), r.random()], [0.6394267984578837, 0.025010755222666936, 0.27502931836911926]);
  assert.equal(r.getrandbits(32), 958682846n);
  assert.equal(r.getrandbits(64), 13585496030504862185n);
  assert.equal(r.randrange(1000), 104);
  const s = new PyRandom(7);
  assert.deepEqual([0, 1, 2, 3, 4].map(() => s.randrange(1000)), [331, 970, 154, 404, 666]);
  assert.equal(s.getrandbits(40), 77516799952n);
  assert.equal(s.getrandbits(100), 403598562939208673953046267940n);
  assert.equal(new PyRandom(123).random(), 0.052363598850944326);
  // Seeds beyond 32 bits and negative seeds (CPython uses abs()).
  assert.equal(new PyRandom(2 ** 40 + 5).random(), 0.5043802970418443);
  assert.equal(new PyRandom(-7).random(), 0.32383276483316237);
});

test('PyRandom.shuffle equals Python 3 shuffle', () => {
  const small = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  new PyRandom(0).shuffle(small);
  assert.deepEqual(small, [7, 8, 1, 5, 3, 4, 2, 0, 9, 6]);
  const aptos = Array.from({ length: 3662 }, (_, i) => i);
  new PyRandom(42).shuffle(aptos);
  assert.deepEqual(aptos.slice(0, 20), [2791, 2171, 1708, 2071, 1406, 1968, 2162, 3028, 3628, 1121, 1447, 321, 818, 2312, 2191, 1759, 1496, 2887, 3043, 3568]);
});

test('paper split: APTOS N=3662 held_out 0.3 gives 2564/549/549, index for index', () => {
  const s = paperSplit(3662, 0.3, 42);
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [2564, 549, 549]);
  assert.deepEqual(s.val.slice(0, 8), [2791, 2171, 1708, 2071, 1406, 1968, 2162, 3028]);
  assert.deepEqual(s.test.slice(0, 8), [1490, 1713, 2516, 2279, 252, 3490, 2518, 735]);
  assert.deepEqual(s.train.slice(0, 8), [2284, 183, 121, 1594, 1544, 588, 1587, 2836]);
  assert.deepEqual(s.train.slice(-3), [102, 456, 2619]);
  assert.equal(new Set([...s.train, ...s.val, ...s.test]).size, 3662);
});

test('paper split: ISIC N=25331 held_out 0.2 gives 20265/2533/2533, index for index', () => {
  const s = paperSplit(25331, 0.2, 42);
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [20265, 2533, 2533]);
  assert.deepEqual(s.val.slice(0, 8), [19993, 22352, 7, 6495, 15314, 17088, 13374, 12986]);
  assert.deepEqual(s.test.slice(0, 8), [10529, 9719, 8588, 10447, 16931, 17994, 11865, 22227]);
  assert.deepEqual(s.train.slice(0, 8), [24759, 20750, 18920, 19761, 17432, 3821, 10491, 9063]);
  assert.deepEqual(s.train.slice(-3), [819, 3648, 20952]);
});

test('stratified split: exact totals, every class shared out, seeded, disjoint', () => {
  // 5 imbalanced classes, 1000 records.
  const sizes = [490, 100, 270, 50, 90];
  const labels = sizes.flatMap((n, c) => Array.from({ length: n }, () => c));
  const s = stratifiedSplit(labels, { train: 0.7, val: 0.15, test: 0.15 }, 3);
  assert.deepEqual([s.train.length, s.val.length, s.test.length], [700, 150, 150]);
  assert.equal(new Set([...s.train, ...s.val, ...s.test]).size, 1000);
  const counts = splitCounts(s, labels, ['a', 'b', 'c', 'd', 'e']);
  sizes.forEach((n, c) => {
    const name = 'abcde'[c];
    assert.ok(Math.abs(counts.val[name] - n * 0.15) <= 1, `val ${name} ${counts.val[name]}`);
    assert.ok(Math.abs(counts.test[name] - n * 0.15) <= 1, `test ${name} ${counts.test[name]}`);
    assert.equal(counts.train[name] + counts.val[name] + counts.test[name], n);
  });
  assert.deepEqual(stratifiedSplit(labels, { train: 0.7, val: 0.15, test: 0.15 }, 3), s);
  assert.notDeepEqual(stratifiedSplit(labels, { train: 0.7, val: 0.15, test: 0.15 }, 4).val, s.val);
  // Default ratios 80/10/10 and unnormalised ratios mean the same thing.
  assert.deepEqual(stratifiedSplit(labels, { train: 8, val: 1, test: 1 }, 3), stratifiedSplit(labels, { train: 0.8, val: 0.1, test: 0.1 }, 3));
});

test('lists split maps ids, reports unknown, duplicated and unassigned ids', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const r = listsSplit(ids, { train: ['a', 'c'], val: ['d', 'x'], test: ['c'] });
  assert.deepEqual(r.split, { train: [0, 2], val: [3], test: [] });
  assert.deepEqual(r.unknown, ['x']);
  assert.deepEqual(r.duplicated, ['c']);
  assert.equal(r.unassigned, 2);
});
