// `hf:<owner>/<repo>[@revision]/<file>` sources: fetched once from the Hugging Face hub
// (or $HF_ENDPOINT) into a download cache, written beside their final name and renamed,
// so a killed download never leaves a file that looks complete. An optional sha256 pin is
// checked before the rename. Offline, the error names the URL and where to put the file.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface HfRef {
  repo: string;
  revision: string;
  file: string;
}

export function parseHfSource(source: string): HfRef {
  const m = /^hf:([^/@\s]+\/[^/@\s]+)(?:@([^/\s]+))?\/(\S+)$/.exec(source);
  if (!m || m[3].split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`bad hf source '${source}': expected hf:<owner>/<repo>[@revision]/<file>, e.g. hf:timm/deit_small_patch16_224.fb_in1k/model.safetensors`);
  }
  return { repo: m[1], revision: m[2] ?? 'main', file: m[3] };
}

export function hfUrl(ref: HfRef, endpoint = process.env.HF_ENDPOINT ?? 'https://huggingface.co'): string {
  const path = ref.file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${path}`;
}

/** The download cache: explicit, else $MEDPIPE_DOWNLOADS, else ~/.cache/medpipe/downloads. */
export function downloadDir(explicit?: string): string {
  return explicit ?? process.env.MEDPIPE_DOWNLOADS ?? join(homedir(), '.cache', 'medpipe', 'downloads');
}

export function hfCachePath(ref: HfRef, dir = downloadDir()): string {
  return join(dir, 'hf', ...ref.repo.split('/'), ref.revision, ...ref.file.split('/'));
}

export async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

export interface Downloaded {
  path: string;
  url: string;
  sha256: string;
  /** False when the file was already in the cache. */
  fetched: boolean;
}

export interface DownloadOptions {
  dir?: string;
  /** Expected sha256 (hex) of the file. */
  sha256?: string;
  endpoint?: string;
  /** Called with bytes so far and total (when the server says), for progress lines. */
  onProgress?(done: number, total: number | undefined): void;
  signal?: AbortSignal;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Returns the local path of an hf: source, downloading it the first time. */
export async function fetchHf(source: string, opts: DownloadOptions = {}): Promise<Downloaded> {
  const ref = parseHfSource(source);
  const url = hfUrl(ref, opts.endpoint);
  const path = hfCachePath(ref, downloadDir(opts.dir));
  const pin = opts.sha256?.toLowerCase();
  if (await exists(path)) {
    const digest = await sha256OfFile(path);
    if (pin !== undefined && digest !== pin) {
      throw new Error(`${path} (cached for ${source}) has sha256 ${digest}, but ${pin} was pinned: delete it to download again, or fix the pin`);
    }
    return { path, url, sha256: digest, fetched: false };
  }
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.partial`;
  const byHand = `Without network access, download it elsewhere and put it at ${path} (or set MEDPIPE_DOWNLOADS / HF_ENDPOINT).`;
  let res: Response;
  try {
    const token = process.env.HF_TOKEN;
    res = await fetch(url, { redirect: 'follow', signal: opts.signal, headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (e) {
    const cause = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    throw new Error(`could not download ${url}: ${cause}. ${byHand}`);
  }
  if (!res.ok || !res.body) {
    throw new Error(`could not download ${url}: HTTP ${res.status} ${res.statusText}${res.status === 401 || res.status === 403 ? ' (a gated repo needs HF_TOKEN)' : ''}. ${byHand}`);
  }
  const total = Number(res.headers.get('content-length')) || undefined;
  const hash = createHash('sha256');
  let done = 0;
  try {
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      done += chunk.length;
      opts.onProgress?.(done, total);
    });
    await pipeline(body, createWriteStream(tmp));
    if (total !== undefined && done !== total) throw new Error(`got ${done} of ${total} bytes`);
    const digest = hash.digest('hex');
    if (pin !== undefined && digest !== pin) throw new Error(`sha256 is ${digest}, but ${pin} was pinned`);
    await rename(tmp, path);
    return { path, url, sha256: digest, fetched: true };
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`could not download ${url}: ${msg}. ${byHand}`);
  }
}
