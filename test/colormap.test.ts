// The saliency colour maps against matplotlib's own tables (test/fixtures/colormaps.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { colorOf, COLORMAPS } from '../src/ml/saliency/colormap.js';

const FIXTURE = JSON.parse(readFileSync(new URL('../../test/fixtures/colormaps.json', import.meta.url), 'utf8')) as { t: number[]; maps: Record<string, [number, number, number][]> };

test('every colour map is matplotlib\'s table, entry for entry (within the 8-bit rounding of its hex copy)', () => {
  for (const name of COLORMAPS) {
    const expected = FIXTURE.maps[name];
    assert.ok(expected, `fixture has ${name}`);
    let worst = 0;
    FIXTURE.t.forEach((t, i) => {
      const got = colorOf(name, t);
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(got[c] - expected[i]![c]));
    });
    // viridis/inferno come as #rrggbb (at most half a level off matplotlib's floats); jet and gray exact.
    assert.ok(worst <= 0.5 + 1e-9, `${name}: worst channel difference ${worst.toFixed(4)} levels`);
  }
});

test('out-of-range and NaN values take the end colours', () => {
  assert.deepEqual(colorOf('viridis', -1), colorOf('viridis', 0));
  assert.deepEqual(colorOf('viridis', 2), colorOf('viridis', 1));
  assert.deepEqual(colorOf('inferno', Number.NaN), colorOf('inferno', 0));
});
