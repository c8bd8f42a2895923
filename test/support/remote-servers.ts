// Servers for the remote-cache tests: an in-process HTTP store with the semantics nginx's
// WebDAV module has (measured: PUT writes a temp file and renames it, answers 201 on create and
// 204 on overwrite, ignores If-None-Match/If-Match), and a small path-style S3 server that does
// honour conditional PUTs as AWS S3 and MinIO do. Both keep objects as files under a directory.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { pipeline } from 'node:stream/promises';

export interface TestServer {
  url: string;
  root: string;
  /** Requests seen, as "METHOD /path". */
  log: string[];
  close(): Promise<void>;
}

/** Called before a PUT's body is read; returning false drops the connection instead (a crash). */
export type PutHook = (path: string) => boolean | Promise<boolean>;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function fileOf(root: string, urlPath: string): string | undefined {
  const rel = normalize(decodeURIComponent(urlPath.split('?')[0]!)).replace(/^\/+/, '');
  return rel.startsWith('..') ? undefined : join(root, rel);
}

async function receive(req: IncomingMessage, target: string, tmp: string): Promise<void> {
  const staging = join(tmp, randomUUID());
  await pipeline(req, createWriteStream(staging));
  mkdirSync(dirname(target), { recursive: true });
  renameSync(staging, target);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Awaited before a GET is answered: a test holds a download there to act in the middle of it. */
export type GetHook = (path: string) => Promise<void>;

export async function startDavServer(options: { onPut?: PutHook; onGet?: GetHook } = {}): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), 'medpipe-dav-'));
  const tmp = join(root, '.tmp');
  mkdirSync(tmp);
  const log: string[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    log.push(`${req.method} ${req.url}`);
    const path = fileOf(root, req.url ?? '/');
    if (!path) return void res.writeHead(400).end();
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        if (req.method === 'GET') await options.onGet?.(req.url ?? '');
        if (!isFile(path)) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': statSync(path).size });
        if (req.method === 'HEAD') return void res.end();
        await pipeline(createReadStream(path), res);
      } else if (req.method === 'PUT') {
        if (options.onPut && !(await options.onPut(req.url ?? ''))) return void req.socket.destroy();
        const existed = isFile(path);
        await receive(req, path, tmp);
        res.writeHead(existed ? 204 : 201).end();
      } else if (req.method === 'DELETE') {
        if (!isFile(path)) return void res.writeHead(404).end();
        unlinkSync(path);
        res.writeHead(204).end();
      } else res.writeHead(405).end();
    } catch {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}/cache/`, root: join(root, 'cache'), log, close: () => closeServer(server, root) };
}

function closeServer(server: Server, root: string): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => {
      rmSync(root, { recursive: true, force: true });
      resolve();
    });
  });
}

const md5 = (path: string) => `"${createHash('md5').update(readFileSync(path)).digest('hex')}"`;

function s3Error(res: ServerResponse, status: number, code: string, head: boolean): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(head ? undefined : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
}

/** Path-style S3 (/bucket/key): GET, HEAD, PUT (If-None-Match: *, If-Match), DELETE. */
export async function startS3Server(bucket: string): Promise<TestServer> {
  const root = mkdtempSync(join(tmpdir(), 'medpipe-s3-'));
  const tmp = join(root, '.tmp');
  mkdirSync(tmp);
  mkdirSync(join(root, bucket));
  const log: string[] = [];
  // One request at a time per key would be a real server's job; a queue gives the same atomicity.
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    const run = async () => {
      const path = fileOf(root, req.url ?? '/');
      const head = req.method === 'HEAD';
      if (!path || !path.startsWith(join(root, bucket) + '/')) return s3Error(res, 404, 'NoSuchBucket', head);
      if (req.method === 'GET' || head) {
        if (!isFile(path)) return s3Error(res, 404, 'NoSuchKey', head);
        res.writeHead(200, { 'content-length': statSync(path).size, etag: md5(path) });
        if (head) return void res.end();
        await pipeline(createReadStream(path), res);
      } else if (req.method === 'PUT') {
        const exists = isFile(path);
        if (req.headers['if-none-match'] === '*' && exists) return (req.resume(), s3Error(res, 412, 'PreconditionFailed', false));
        const ifMatch = req.headers['if-match'];
        if (ifMatch && (!exists || md5(path) !== ifMatch)) return (req.resume(), s3Error(res, 412, 'PreconditionFailed', false));
        await receive(req, path, tmp);
        res.writeHead(200, { etag: md5(path) }).end();
      } else if (req.method === 'DELETE') {
        if (isFile(path)) unlinkSync(path);
        res.writeHead(204).end();
      } else s3Error(res, 405, 'MethodNotAllowed', false);
    };
    queue = queue.then(run).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, root: join(root, bucket), log, close: () => closeServer(server, root) };
}

/** The nginx started by .ci/services.sh, if this run has one; each caller gets its own prefix. */
export function nginxUrl(): string | undefined {
  const port = process.env['MEDPIPE_TEST_WEBDAV'];
  return port ? `http://127.0.0.1:${port}/medpipe-test-${randomUUID()}/` : undefined;
}
