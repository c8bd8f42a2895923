import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import type * as S3 from '@aws-sdk/client-s3';
import { RemoteError, type Body, type ObjectBackend, type Stored } from './backend.js';
import { defaultRetryPolicy, TransientError, withRetries, type RetryPolicy } from './retry.js';

export interface S3BackendOptions {
  /** Only `retries` is used: the SDK's standard mode sets the backoff (exponential, full jitter). */
  retry?: RetryPolicy;
  warn?: (message: string) => void;
}

export interface S3Location {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region: string;
}

/** `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=…`; MEDPIPE_S3_ENDPOINT also sets the endpoint. */
export function parseS3Url(url: URL, env: NodeJS.ProcessEnv = process.env): S3Location {
  const endpoint = url.searchParams.get('endpoint') ?? env['MEDPIPE_S3_ENDPOINT'] ?? undefined;
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
  return {
    bucket: url.hostname,
    prefix: prefix ? `${prefix}/` : '',
    region: url.searchParams.get('region') ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
  };
}

// The SDK takes ~150 ms to load: loaded on the first s3:// remote, so that every other
// command (and every worker) does not pay for it at start-up.
let loaded: typeof S3 | undefined;
const sdk = (): typeof S3 => (loaded ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3);

const status = (err: unknown) => (err instanceof sdk().S3ServiceException ? err.$metadata.httpStatusCode : undefined);

/**
 * S3 and compatible stores (MinIO, Garage, Ceph RGW). Objects appear whole on PUT. create() and
 * replace() are conditional PUTs (If-None-Match: *, If-Match: <etag>), enforced by AWS S3 since
 * 2024 and by MinIO; a server that ignores those headers degrades to last-writer-wins.
 *
 * Transient failures (resets, 5xx, throttling) are retried by the SDK's own standard retry
 * mode, `retries` times. Two things it cannot retry are retried here: a response body cut off
 * mid-stream (the SDK has returned by then), and an upload from a file, whose stream the SDK
 * cannot rewind — that one goes through a client without retries, with a fresh stream per try.
 */
export class S3Backend implements ObjectBackend {
  readonly exclusive = true;
  readonly url: string;
  private readonly api = sdk();
  private readonly client: S3.S3Client;
  /** For uploads from a file: one attempt each, retried by putFile() with a new stream. */
  private readonly onceClient: S3.S3Client;
  private readonly retry: RetryPolicy;
  private readonly warn: (message: string) => void;

  constructor(
    url: URL,
    private readonly at: S3Location = parseS3Url(url),
    options: S3BackendOptions = {},
  ) {
    this.url = `s3://${at.bucket}/${at.prefix}`;
    this.retry = options.retry ?? defaultRetryPolicy();
    this.warn = options.warn ?? ((message) => process.stderr.write(`warning: remote ${this.url}: ${message}\n`));
    const config = {
      region: at.region,
      ...(at.endpoint ? { endpoint: at.endpoint, forcePathStyle: true } : {}),
      // Default CRC trailers use aws-chunked uploads, which several S3-compatible servers reject.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      retryMode: 'standard',
    } as const;
    const { S3Client } = this.api;
    this.client = new S3Client({ ...config, maxAttempts: this.retry.retries + 1 });
    this.onceClient = new S3Client({ ...config, maxAttempts: 1 });
  }

  /** Says how many retries the SDK needed (its response metadata counts the attempts). */
  private async counted<T extends { $metadata: { attempts?: number } }>(label: string, sent: Promise<T>): Promise<T> {
    try {
      const out = await sent;
      const attempts = out.$metadata.attempts ?? 1;
      if (attempts > 1) this.warn(`${label}: succeeded after ${attempts - 1} ${attempts === 2 ? 'retry' : 'retries'}`);
      return out;
    } catch (err) {
      // The SDK's retry middleware stamps $metadata on whatever it rethrows, service error or not.
      const attempts = (err as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
      if (attempts > 1 && err instanceof Error) err.message += ` (after ${attempts - 1} ${attempts === 2 ? 'retry' : 'retries'})`;
      throw err;
    }
  }

  private key(path: string): string {
    return `${this.at.prefix}${path}`;
  }

  private wrap(op: string, path: string, err: unknown): RemoteError {
    return new RemoteError(this.url, `${op} ${path}: ${(err as Error).name}: ${(err as Error).message}`);
  }

  private async get(path: string): Promise<{ body: Readable; etag?: string } | undefined> {
    try {
      const out = await this.counted(`GET ${path}`, this.client.send(new this.api.GetObjectCommand({ Bucket: this.at.bucket, Key: this.key(path) })));
      if (!(out.Body instanceof Readable)) throw new Error('response body is not a stream');
      return { body: out.Body, ...(out.ETag ? { etag: out.ETag } : {}) };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw this.wrap('GET', path, err);
    }
  }

  /** A GET whose body is consumed by `consume`; a body cut off mid-stream is tried again. */
  private async getWhole<T>(path: string, consume: (got: { body: Readable; etag?: string }) => Promise<T>, cleanup: () => Promise<void>): Promise<T | undefined> {
    try {
      return await withRetries(`GET ${path} (body)`, this.retry, this.warn, async () => {
        const got = await this.get(path);
        if (!got) return undefined;
        try {
          return await consume(got);
        } catch (err) {
          await cleanup();
          throw new TransientError(`body cut short: ${(err as Error).message}`);
        }
      });
    } catch (err) {
      if (err instanceof TransientError) throw new RemoteError(this.url, `GET ${path}: ${err.message}`);
      throw err;
    }
  }

  async read(path: string): Promise<Stored | undefined> {
    return this.getWhole(
      path,
      async (got) => {
        const chunks: Buffer[] = [];
        for await (const chunk of got.body) chunks.push(chunk as Buffer);
        return { bytes: Buffer.concat(chunks), ...(got.etag ? { etag: got.etag } : {}) };
      },
      async () => {},
    );
  }

  async download(path: string, dest: string): Promise<boolean> {
    const done = await this.getWhole(
      path,
      async (got) => (await pipeline(got.body, createWriteStream(dest)), true),
      () => rm(dest, { force: true }),
    );
    return done ?? false;
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.counted(`HEAD ${path}`, this.client.send(new this.api.HeadObjectCommand({ Bucket: this.at.bucket, Key: this.key(path) })));
      return true;
    } catch (err) {
      if (status(err) === 404) return false;
      throw this.wrap('HEAD', path, err);
    }
  }

  private async put(path: string, body: Body, condition: { IfNoneMatch: string } | { IfMatch: string } | object): Promise<boolean> {
    const send = (client: S3.S3Client) =>
      client.send(
        new this.api.PutObjectCommand({
          Bucket: this.at.bucket,
          Key: this.key(path),
          ...('file' in body ? { Body: createReadStream(body.file), ContentLength: body.size } : { Body: body.bytes }),
          ...condition,
        }),
      );
    try {
      if ('file' in body) await this.putFile(path, () => send(this.onceClient));
      else await this.counted(`PUT ${path}`, send(this.client));
      return true;
    } catch (err) {
      // 409: a concurrent conditional write to the same key is in flight (AWS); it wins.
      if (status(err) === 412 || status(err) === 409) return false;
      throw this.wrap('PUT', path, err);
    }
  }

  /** An upload from a file, a new stream per attempt; what the SDK would retry is retried here. */
  private async putFile(path: string, send: () => Promise<unknown>): Promise<void> {
    try {
      await withRetries(`PUT ${path}`, this.retry, this.warn, async () => {
        try {
          await send();
        } catch (err) {
          if (isSdkRetryable(err)) throw new TransientError(`${(err as Error).name}: ${(err as Error).message}`);
          throw err;
        }
      });
    } catch (err) {
      if (err instanceof TransientError) throw new Error(err.message);
      throw err;
    }
  }

  async create(path: string, body: Body): Promise<boolean> {
    return this.put(path, body, { IfNoneMatch: '*' });
  }

  async putMutable(path: string, body: Body): Promise<void> {
    // Unconditional: false only for a 409 from a concurrent write, whose object then stands.
    await this.put(path, body, {});
  }

  async replace(path: string, bytes: Uint8Array, expected: Stored): Promise<boolean> {
    return this.put(path, { bytes }, expected.etag ? { IfMatch: expected.etag } : {});
  }

  async remove(path: string): Promise<boolean> {
    try {
      await this.counted(`DELETE ${path}`, this.client.send(new this.api.DeleteObjectCommand({ Bucket: this.at.bucket, Key: this.key(path) })));
      return true;
    } catch (err) {
      throw this.wrap('DELETE', path, err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.onceClient.destroy();
  }
}

/** The SDK's own verdict (standard mode marks throttling and transient errors); sockets too. */
function isSdkRetryable(err: unknown): boolean {
  const code = status(err);
  if (code !== undefined) return code === 429 || code === 500 || code === 502 || code === 503 || code === 504;
  const { code: sys } = err as NodeJS.ErrnoException;
  return sys === 'ECONNRESET' || sys === 'EPIPE' || sys === 'ETIMEDOUT' || (err as Error).name === 'TimeoutError';
}
