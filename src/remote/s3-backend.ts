import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { RemoteError, type Body, type ObjectBackend, type Stored } from './backend.js';

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

const status = (err: unknown) => (err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined);

/**
 * S3 and compatible stores (MinIO, Garage, Ceph RGW). Objects appear whole on PUT. create() and
 * replace() are conditional PUTs (If-None-Match: *, If-Match: <etag>), enforced by AWS S3 since
 * 2024 and by MinIO; a server that ignores those headers degrades to last-writer-wins.
 */
export class S3Backend implements ObjectBackend {
  readonly exclusive = true;
  readonly url: string;
  private readonly client: S3Client;

  constructor(
    url: URL,
    private readonly at: S3Location = parseS3Url(url),
  ) {
    this.url = `s3://${at.bucket}/${at.prefix}`;
    this.client = new S3Client({
      region: at.region,
      ...(at.endpoint ? { endpoint: at.endpoint, forcePathStyle: true } : {}),
      // Default CRC trailers use aws-chunked uploads, which several S3-compatible servers reject.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  private key(path: string): string {
    return `${this.at.prefix}${path}`;
  }

  private wrap(op: string, path: string, err: unknown): RemoteError {
    return new RemoteError(this.url, `${op} ${path}: ${(err as Error).name}: ${(err as Error).message}`);
  }

  private async get(path: string): Promise<{ body: Readable; etag?: string } | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.at.bucket, Key: this.key(path) }));
      if (!(out.Body instanceof Readable)) throw new Error('response body is not a stream');
      return { body: out.Body, ...(out.ETag ? { etag: out.ETag } : {}) };
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw this.wrap('GET', path, err);
    }
  }

  async read(path: string): Promise<Stored | undefined> {
    const got = await this.get(path);
    if (!got) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) chunks.push(chunk as Buffer);
    return { bytes: Buffer.concat(chunks), ...(got.etag ? { etag: got.etag } : {}) };
  }

  async download(path: string, dest: string): Promise<boolean> {
    const got = await this.get(path);
    if (!got) return false;
    try {
      await pipeline(got.body, createWriteStream(dest));
    } catch (err) {
      await rm(dest, { force: true });
      throw this.wrap('GET', path, err);
    }
    return true;
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.at.bucket, Key: this.key(path) }));
      return true;
    } catch (err) {
      if (status(err) === 404) return false;
      throw this.wrap('HEAD', path, err);
    }
  }

  private async put(path: string, body: Body, condition: { IfNoneMatch: string } | { IfMatch: string } | object): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.at.bucket,
          Key: this.key(path),
          ...('file' in body ? { Body: createReadStream(body.file), ContentLength: body.size } : { Body: body.bytes }),
          ...condition,
        }),
      );
      return true;
    } catch (err) {
      // 409: a concurrent conditional write to the same key is in flight (AWS); it wins.
      if (status(err) === 412 || status(err) === 409) return false;
      throw this.wrap('PUT', path, err);
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
      await this.client.send(new DeleteObjectCommand({ Bucket: this.at.bucket, Key: this.key(path) }));
      return true;
    } catch (err) {
      throw this.wrap('DELETE', path, err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
