// Remote cache: pushing a Table-1-sized graph's results to an HTTP remote, then pulling them
// into an empty local cache, per node. Uses the nginx of .ci/services.sh when
// $MEDPIPE_TEST_WEBDAV names its port, else the in-process server the tests use. Printed, never asserted.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JSONObject } from '../src/contract.js';
import { nodeKey, type KeyMaterial } from '../src/keys.js';
import { openRemote } from '../src/remote/open.js';
import { RemoteCache } from '../src/remote/remote-cache.js';
import type { Manifest } from '../src/store/artifacts.js';
import { Store } from '../src/store/store.js';
import { digestJSON } from '../src/util/hash.js';
import { startDavServer } from '../test/support/remote-servers.js';
import { fmt, time } from './stats.js';

/** 3 data sets x 2 models x 3 inits x 5 seeds fine-tunes, plus evaluations and the rest: ~200 nodes. */
export const TABLE1_NODES = 3 * 2 * 3 * 5 * 2 + 3 + 3 + 6 + 2 + 6 + 1;

async function fakeResults(store: Store, n: number, blobBytes: number): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  mkdirSync(store.tmpDir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const material: KeyMaterial = { kind: 'bench', version: 1, params: { i, run: randomUUID() }, inputs: {} };
    const value: JSONObject = { metric: i / n, node: i };
    const src = join(store.tmpDir, `blob-src-${i}`);
    writeFileSync(src, Buffer.alloc(blobBytes, i & 255));
    const blob = await store.blobs.put(src, { move: true });
    const key = nodeKey(material);
    manifests.push(
      await store.commit({
        key,
        pipeline: 'bench',
        node: `n${i}`,
        stage: 'bench',
        kind: 'bench',
        version: 1,
        material,
        outputs: { metrics: { type: 'json', digest: digestJSON(value), value }, weights: { type: 'file', digest: blob.digest, size: blob.size, filename: 'w.bin' } },
        provenance: { started: new Date().toISOString(), duration_s: 1, host: 'bench', pid: 0, log: '', versions: {}, reported: {} },
      }),
    );
  }
  return manifests;
}

export async function benchRemote(log: (line: string) => void, options: { nodes?: number; blobBytes?: number } = {}): Promise<void> {
  const n = options.nodes ?? TABLE1_NODES;
  const blobBytes = options.blobBytes ?? 64 * 1024;
  const port = process.env['MEDPIPE_TEST_WEBDAV'];
  const server = port ? undefined : await startDavServer();
  const url = port ? `http://127.0.0.1:${port}/medpipe-bench-${randomUUID()}/` : server!.url;
  const dir = mkdtempSync(join(tmpdir(), 'medpipe-bench-remote-'));
  const a = new Store(join(dir, 'a'));
  const b = new Store(join(dir, 'b'));
  const warn = (m: string) => log(`warning: ${m}`);
  const ra = new RemoteCache(openRemote(url), a, { warn });
  const rb = new RemoteCache(openRemote(url), b, { warn });
  try {
    log(`remote: ${port ? `nginx WebDAV on 127.0.0.1:${port}` : 'in-process HTTP server (set MEDPIPE_TEST_WEBDAV for nginx)'}; ${n} nodes, each a json output and a ${blobBytes / 1024} KiB blob`);
    const manifests = await fakeResults(a, n, blobBytes);
    const per = (s: number) => `${fmt(s)} (${fmt(s / n)} per node)`;
    const [, push] = await time(async () => {
      for (const m of manifests) await ra.push(m);
    });
    log(`push:                         ${per(push)}`);
    const [peeked, peek] = await time(async () => {
      let found = 0;
      for (const m of manifests) if (await rb.peek(m.key)) found++;
      return found;
    });
    log(`look up manifests (status):   ${per(peek)}, ${peeked}/${n} found`);
    const [pulled, pull] = await time(async () => {
      let found = 0;
      for (const m of manifests) if (await rb.pull(m.key)) found++;
      return found;
    });
    log(`pull manifests + blobs:       ${per(pull)}, ${pulled}/${n} verified and committed`);
    const [, again] = await time(async () => {
      for (const m of manifests) b.manifest(m.key);
    });
    log(`local hit afterwards:         ${per(again)}`);
  } finally {
    await ra.close();
    await rb.close();
    await a.close();
    await b.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
