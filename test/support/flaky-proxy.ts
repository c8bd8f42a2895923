// A loopback proxy in front of a test store that fails a seeded fraction of requests the ways
// a flaky network or an overloaded proxy does: a reset before answering, 502/503/504/429, an
// answer cut off mid-body, an upload cut off mid-body (the store sees half a PUT).
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Rng } from '../../src/data/rng.js';

export type Fault = 'reset' | '502' | '503' | '504' | '429' | 'cut-response' | 'cut-upload';
export const ALL_FAULTS: readonly Fault[] = ['reset', '502', '503', '504', '429', 'cut-response', 'cut-upload'];

export interface FlakyProxy {
  url: string;
  /** Requests seen, and faults injected by kind. */
  requests: number;
  injected: Partial<Record<Fault, number>>;
  close(): Promise<void>;
}

export interface FlakyOptions {
  seed: number;
  /** Share of requests that fail, in [0, 1]. */
  fraction: number;
  faults?: readonly Fault[];
  /** Only requests whose "METHOD /path" matches are faulted. */
  only?: RegExp;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function forward(target: URL, req: IncomingMessage, body: Buffer, cutUpload: boolean): Promise<Upstream | undefined> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: target.host };
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, async (res) => {
      try {
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: await readAll(res) });
      } catch (err) {
        reject(err);
      }
    });
    if (cutUpload) {
      // Half the body, then the connection dies: the store must not keep what it got.
      up.on('error', () => resolve(undefined));
      up.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => (up.destroy(), resolve(undefined)), 20));
      return;
    }
    up.on('error', reject);
    up.end(body);
  });
}

export async function startFlakyProxy(target: string, options: FlakyOptions): Promise<FlakyProxy> {
  const base = new URL(target);
  const rng = new Rng(options.seed, 0xf1a);
  const faults = options.faults ?? ALL_FAULTS;
  const proxy: FlakyProxy = { url: '', requests: 0, injected: {}, close: async () => {} };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    proxy.requests++;
    const body = await readAll(req);
    const eligible = options.only === undefined || options.only.test(`${req.method} ${req.url}`);
    let fault: Fault | undefined = eligible && rng.float() < options.fraction ? faults[Math.floor(rng.float() * faults.length)] : undefined;
    if (fault === 'cut-upload' && body.length < 2) fault = 'reset';
    if (fault !== undefined) proxy.injected[fault] = (proxy.injected[fault] ?? 0) + 1;
    if (fault === 'reset') return void req.socket.destroy();
    if (fault === '502' || fault === '503' || fault === '504' || fault === '429') {
      return void res.writeHead(Number(fault), fault === '429' || fault === '503' ? { 'retry-after': '0' } : {}).end();
    }
    try {
      const up = await forward(base, req, body, fault === 'cut-upload');
      if (up === undefined) return void req.socket.destroy();
      const headers = { ...up.headers };
      delete headers['transfer-encoding'];
      delete headers['connection'];
      if (req.method !== 'HEAD') headers['content-length'] = String(up.body.length);
      if (fault === 'cut-response') {
        // An empty answer (HEAD, a PUT's 201) is lost whole: the store did the work, the client never hears.
        if (up.body.length < 2) return void req.socket.destroy();
        res.writeHead(up.status, headers);
        res.write(up.body.subarray(0, Math.floor(up.body.length / 2)), () => req.socket.destroy());
        return;
      }
      res.writeHead(up.status, headers).end(up.body);
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  proxy.url = `http://127.0.0.1:${port}${base.pathname}`;
  proxy.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
