import { createWriteStream, openAsBlob } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { RemoteError, type Body, type ObjectBackend, type Stored } from './backend.js';
import { defaultRetryPolicy, isTransientNetworkError, networkCode, retryAfterMs, TRANSIENT_STATUSES, TransientError, UNPROCESSED_STATUSES, withRetries, type RetryPolicy } from './retry.js';

export interface HttpBackendOptions {
  retry?: RetryPolicy;
  /** Where "succeeded after N retries" goes; stderr by default. */
  warn?: (message: string) => void;
}

/** Which failures of a request may be tried again. */
type Replay = 'idempotent' | 'unprocessed-only';

/**
 * An HTTP cache speaking bazel-remote's protocol (GET/PUT/HEAD on /ac/… and /cas/…), which a
 * WebDAV server such as nginx's dav module also serves. Both write an upload to a temp file and
 * rename it, so a reader never sees half an object; neither honours If-None-Match/If-Match on
 * PUT (nginx 1.22 ignores them, measured), so create() is check-then-put: write-once only in
 * the absence of a racing writer, which for content-addressed entries is harmless.
 *
 * Transient failures (resets, 408/429/502/503/504, a body cut short) are retried with backoff
 * (retry.ts). Every request but replace() is idempotent (GET, HEAD, DELETE, and PUTs of the same
 * bytes again), so a retry whose first try did land changes nothing. replace() is conditional:
 * only failures that say the server did nothing (429, 503) are retried, since after a lost
 * answer to a PUT that landed, the retry's 412 would read as "someone else changed it".
 */
export class HttpBackend implements ObjectBackend {
  readonly exclusive = false;
  readonly url: string;
  private readonly base: string;
  private readonly auth: string | undefined;
  private readonly retry: RetryPolicy;
  private readonly warn: (message: string) => void;

  constructor(url: URL, options: HttpBackendOptions = {}) {
    const u = new URL(url.href);
    this.auth = u.username ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` : undefined;
    u.username = '';
    u.password = '';
    this.url = u.href;
    this.base = u.href.endsWith('/') ? u.href : `${u.href}/`;
    this.retry = options.retry ?? defaultRetryPolicy();
    this.warn = options.warn ?? ((message) => process.stderr.write(`warning: remote ${this.url}: ${message}\n`));
  }

  /**
   * One operation: `handle` sees each attempt's response and returns the result, or throws a
   * TransientError (retried) or anything else (final). Network errors are classified here.
   */
  private async call<T>(method: string, path: string, replay: Replay, init: { headers?: Record<string, string>; body?: () => Promise<Blob> }, handle: (res: Response) => Promise<T>): Promise<T> {
    const label = `${method} ${path}`;
    const headers: Record<string, string> = { ...init.headers };
    if (this.auth) headers['authorization'] = this.auth;
    try {
      return await withRetries(label, this.retry, this.warn, async () => {
        let res: Response;
        try {
          res = await fetch(new URL(path, this.base), { method, headers, ...(init.body ? { body: await init.body() } : {}) });
        } catch (err) {
          const message = reasonOf(err);
          if (replay === 'idempotent' && isTransientNetworkError(err)) throw new TransientError(message);
          throw new RemoteError(this.url, `${label}: ${message}`);
        }
        const retryable = replay === 'idempotent' ? TRANSIENT_STATUSES : UNPROCESSED_STATUSES;
        if (retryable.has(res.status)) {
          void res.body?.cancel();
          throw new TransientError(`HTTP ${res.status} ${res.statusText}`, retryAfterMs(res.headers.get('retry-after')));
        }
        return handle(res);
      });
    } catch (err) {
      if (err instanceof TransientError) throw new RemoteError(this.url, `${label}: ${err.message}`);
      throw err;
    }
  }

  private fail(res: Response, method: string, path: string): never {
    void res.body?.cancel();
    throw new RemoteError(this.url, `${method} ${path}: HTTP ${res.status} ${res.statusText}`);
  }

  async read(path: string): Promise<Stored | undefined> {
    return this.call('GET', path, 'idempotent', {}, async (res) => {
      if (res.status === 404) return (void res.body?.cancel(), undefined);
      if (!res.ok) this.fail(res, 'GET', path);
      const etag = res.headers.get('etag') ?? undefined;
      let bytes: Buffer;
      try {
        bytes = Buffer.from(await res.arrayBuffer());
      } catch (err) {
        // The connection dropped mid-body (undici checks Content-Length): try it again.
        throw new TransientError(`body cut short: ${reasonOf(err)}`);
      }
      return { bytes, ...(etag ? { etag } : {}) };
    });
  }

  async download(path: string, dest: string): Promise<boolean> {
    return this.call('GET', path, 'idempotent', {}, async (res) => {
      if (res.status === 404) return (void res.body?.cancel(), false);
      if (!res.ok || !res.body) this.fail(res, 'GET', path);
      try {
        await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(dest));
      } catch (err) {
        await rm(dest, { force: true });
        throw new TransientError(`body cut short: ${reasonOf(err)}`);
      }
      return true;
    });
  }

  async exists(path: string): Promise<boolean> {
    return this.call('HEAD', path, 'idempotent', {}, async (res) => {
      if (res.status === 404) return false;
      if (!res.ok) this.fail(res, 'HEAD', path);
      return true;
    });
  }

  /** A PUT; the Blob is made per attempt (a file's is re-read from disk each time). */
  private async put<T>(path: string, body: Body, headers: Record<string, string>, replay: Replay, handle: (res: Response) => Promise<T>): Promise<T> {
    const payload = () => ('file' in body ? openAsBlob(body.file) : Promise.resolve(new Blob([Buffer.from(body.bytes)])));
    return this.call('PUT', path, replay, { headers: { 'content-type': 'application/octet-stream', ...headers }, body: payload }, handle);
  }

  async create(path: string, body: Body): Promise<boolean> {
    if (await this.exists(path)) return false;
    // Asked for anyway: a server that honours it turns the check-then-put into a real create.
    return this.put(path, body, { 'if-none-match': '*' }, 'idempotent', async (res) => {
      if (res.status === 412) return (void res.body?.cancel(), false);
      if (!res.ok) this.fail(res, 'PUT', path);
      void res.body?.cancel();
      return true;
    });
  }

  async putMutable(path: string, body: Body): Promise<void> {
    return this.put(path, body, {}, 'idempotent', async (res) => {
      if (!res.ok) this.fail(res, 'PUT', path);
      void res.body?.cancel();
    });
  }

  async replace(path: string, bytes: Uint8Array, expected: Stored): Promise<boolean> {
    return this.put(path, { bytes }, expected.etag ? { 'if-match': expected.etag } : {}, 'unprocessed-only', async (res) => {
      if (res.status === 412) return (void res.body?.cancel(), false);
      if (!res.ok) this.fail(res, 'PUT', path);
      void res.body?.cancel();
      return true;
    });
  }

  async remove(path: string): Promise<boolean> {
    return this.call('DELETE', path, 'idempotent', {}, async (res) => {
      void res.body?.cancel();
      if (res.ok || res.status === 404) return true;
      // bazel-remote has no DELETE; the caller overwrites instead.
      if (res.status === 405 || res.status === 501 || res.status === 403) return false;
      this.fail(res, 'DELETE', path);
    });
  }

  async close(): Promise<void> {}
}

/** fetch's "fetch failed" says nothing; the socket error under it does. */
function reasonOf(err: unknown): string {
  const cause = (err as Error).cause;
  const message = cause instanceof Error ? cause.message : (err as Error).message;
  const code = networkCode(err);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
