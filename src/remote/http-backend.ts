import { createWriteStream, openAsBlob } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RemoteError, type Body, type ObjectBackend, type Stored } from './backend.js';

/**
 * An HTTP cache speaking bazel-remote's protocol (GET/PUT/HEAD on /ac/… and /cas/…), which a
 * WebDAV server such as nginx's dav module also serves. Both write an upload to a temp file and
 * rename it, so a reader never sees half an object; neither honours If-None-Match/If-Match on
 * PUT (nginx 1.22 ignores them, measured), so create() is check-then-put: write-once only in
 * the absence of a racing writer, which for content-addressed entries is harmless.
 */
export class HttpBackend implements ObjectBackend {
  readonly exclusive = false;
  readonly url: string;
  private readonly base: string;
  private readonly auth: string | undefined;

  constructor(url: URL) {
    const u = new URL(url.href);
    this.auth = u.username ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` : undefined;
    u.username = '';
    u.password = '';
    this.url = u.href;
    this.base = u.href.endsWith('/') ? u.href : `${u.href}/`;
  }

  private async request(method: string, path: string, init: { headers?: Record<string, string>; body?: Blob } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.auth) headers['authorization'] = this.auth;
    try {
      return await fetch(new URL(path, this.base), { method, headers, body: init.body });
    } catch (err) {
      throw new RemoteError(this.url, `${method} ${path}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
  }

  private fail(res: Response, method: string, path: string): never {
    void res.body?.cancel();
    throw new RemoteError(this.url, `${method} ${path}: HTTP ${res.status} ${res.statusText}`);
  }

  async read(path: string): Promise<Stored | undefined> {
    const res = await this.request('GET', path);
    if (res.status === 404) return (void res.body?.cancel(), undefined);
    if (!res.ok) this.fail(res, 'GET', path);
    const etag = res.headers.get('etag') ?? undefined;
    return { bytes: Buffer.from(await res.arrayBuffer()), ...(etag ? { etag } : {}) };
  }

  async download(path: string, dest: string): Promise<boolean> {
    const res = await this.request('GET', path);
    if (res.status === 404) return (void res.body?.cancel(), false);
    if (!res.ok || !res.body) this.fail(res, 'GET', path);
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(dest));
    } catch (err) {
      await rm(dest, { force: true });
      throw new RemoteError(this.url, `GET ${path}: ${(err as Error).message}`);
    }
    return true;
  }

  async exists(path: string): Promise<boolean> {
    const res = await this.request('HEAD', path);
    if (res.status === 404) return false;
    if (!res.ok) this.fail(res, 'HEAD', path);
    return true;
  }

  private async put(path: string, body: Body, headers: Record<string, string>): Promise<Response> {
    const payload = 'file' in body ? await openAsBlob(body.file) : new Blob([Buffer.from(body.bytes)]);
    return this.request('PUT', path, { headers: { 'content-type': 'application/octet-stream', ...headers }, body: payload });
  }

  async create(path: string, body: Body): Promise<boolean> {
    if (await this.exists(path)) return false;
    // Asked for anyway: a server that honours it turns the check-then-put into a real create.
    const res = await this.put(path, body, { 'if-none-match': '*' });
    if (res.status === 412) return (void res.body?.cancel(), false);
    if (!res.ok) this.fail(res, 'PUT', path);
    void res.body?.cancel();
    return true;
  }

  async putMutable(path: string, body: Body): Promise<void> {
    const res = await this.put(path, body, {});
    if (!res.ok) this.fail(res, 'PUT', path);
    void res.body?.cancel();
  }

  async replace(path: string, bytes: Uint8Array, expected: Stored): Promise<boolean> {
    const res = await this.put(path, { bytes }, expected.etag ? { 'if-match': expected.etag } : {});
    if (res.status === 412) return (void res.body?.cancel(), false);
    if (!res.ok) this.fail(res, 'PUT', path);
    void res.body?.cancel();
    return true;
  }

  async remove(path: string): Promise<boolean> {
    const res = await this.request('DELETE', path);
    void res.body?.cancel();
    if (res.ok || res.status === 404) return true;
    // bazel-remote has no DELETE; the caller overwrites instead.
    if (res.status === 405 || res.status === 501 || res.status === 403) return false;
    this.fail(res, 'DELETE', path);
  }

  async close(): Promise<void> {}
}
