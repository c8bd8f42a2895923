// What `status` says when a node's raw files changed: its fingerprint's readable fields (how
// many files, how many problems), or that the same files' contents changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { explainChange, type KeyMaterial } from '../src/keys.js';

const material = (external: KeyMaterial['external']): KeyMaterial => ({ kind: 'preprocess', version: 1, params: { format: 'csv' }, inputs: {}, external });
const fingerprint = (files: number, sha: string, problems = 0) => ({ format: 'csv', files, sha256: sha.repeat(64), problems, problems_sha256: 'e'.repeat(64) });

test('external files changed says what: a file count, a problem count, or the same files with other contents', () => {
  // Base: "external files changed" in every case, naming nothing.
  assert.deepEqual(explainChange(material(fingerprint(8, 'a')), material(fingerprint(8, 'b'))), ['external files changed (the same 8 files; contents changed)']);
  assert.deepEqual(explainChange(material(fingerprint(8, 'a')), material(fingerprint(9, 'b'))), ['external files changed (files: 8 -> 9)']);
  assert.deepEqual(explainChange(material(fingerprint(8, 'a', 1)), material(fingerprint(8, 'a', 0))), ['external files changed (problems: 1 -> 0)']);
  assert.deepEqual(explainChange(material({ sha256: 'a'.repeat(64) }), material({ sha256: 'b'.repeat(64) })), ['external files changed (contents changed)']);
});
