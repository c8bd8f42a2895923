// `hf:<owner>/<repo>[@revision]/<file>` sources, through the Hugging Face hub's own cache
// layout, so what timm, transformers or `huggingface-cli download` already fetched is used
// with no network and what medpipe fetches they find too:
//   <hub cache>/models--<owner>--<repo>/refs/<revision>         the commit a branch/tag was at
//   <hub cache>/models--<owner>--<repo>/snapshots/<commit>/<file> a link to ../../blobs/<etag>
//   <hub cache>/models--<owner>--<repo>/blobs/<etag>             the bytes (etag = sha256 for LFS)
// The hub cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (as
// huggingface_hub has it). A revision resolves to a commit, recorded with the file; a cached
// file is used without asking the hub whether the branch moved (pin @<commit> to be explicit).
// Downloads go to blobs/<etag>.incomplete and are renamed once complete and checked, so a
// killed download never leaves a file that looks complete.
//
// Not @huggingface/hub's downloadFileToCacheDir: it asks the hub's API for every branch name
// (so a cached `main` still needs the network), never writes refs/, and logs to the console.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface HfRef {
  repo: string;
  revision: string;
  file: string;
}

const COMMIT = /^[0-9a-f]{40}$/;

export function parseHfSource(source: string): HfRef {
  const m = /^hf:([^/@\s]+\/[^/@\s]+)(?:@([^/\s]+))?\/(\S+)$/.exec(source);
  if (!m || m[3].split('/').some((s) => s === '' || s === '.' || s === '..') || m[2] === '.' || m[2] === '..') {
    throw new Error(`bad hf source '${source}': expected hf:<owner>/<repo>[@revision]/<file>, e.g. hf:timm/deit_small_patch16_224.fb_in1k/model.safetensors`);
  }
  return { repo: m[1], revision: m[2] ?? 'main', file: m[3] };
}

export function hfUrl(ref: HfRef, endpoint = process.env.HF_ENDPOINT ?? 'https://huggingface.co'): string {
  const path = ref.file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${path}`;
}

/** The hub cache: explicit, else $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined) return explicit;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** models--<owner>--<repo>: huggingface_hub's folder name for a model repo. */
export function repoFolder(ref: HfRef, hub: string): string {
  return join(hub, `models--${ref.repo.split('/').join('--')}`);
}

export function snapshotPath(ref: HfRef, commit: string, hub: string): string {
  return join(repoFolder(ref, hub), 'snapshots', commit, ...ref.file.split('/'));
}

/** Refs are branch or tag names, which may hold slashes (refs/pr/1). */
function refPath(ref: HfRef, hub: string): string {
  return join(repoFolder(ref, hub), 'refs', ...ref.revision.split('/'));
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
  /** The commit the revision resolved to. */
  commit: string;
  /** False when the file was already in the hub cache. */
  fetched: boolean;
}

export interface DownloadOptions {
  /** The hub cache directory (default: hubCacheDir()). */
  dir?: string;
  /** Expected sha256 (hex) of the file. */
  sha256?: string;
  endpoint?: string;
  /** Called with bytes so far and total (when the server says), for progress lines. */
  onProgress?(done: number, total: number | undefined): void;
  signal?: AbortSignal;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The commit a revision is at in the cache: itself when it is one, else refs/<revision>. */
async function cachedCommit(ref: HfRef, hub: string): Promise<string | undefined> {
  if (COMMIT.test(ref.revision)) return ref.revision;
  const text = await readFile(refPath(ref, hub), 'utf8').catch(() => undefined);
  const commit = text?.trim();
  return commit !== undefined && COMMIT.test(commit) ? commit : undefined;
}

/** Returns the local path of an hf: source, from the hub cache or downloaded into it. */
export async function fetchHf(source: string, opts: DownloadOptions = {}): Promise<Downloaded> {
  const ref = parseHfSource(source);
  const url = hfUrl(ref, opts.endpoint);
  const hub = hubCacheDir(opts.dir);
  const pin = opts.sha256?.toLowerCase();
  const known = await cachedCommit(ref, hub);
  if (known !== undefined && (await isFile(snapshotPath(ref, known, hub)))) {
    const path = snapshotPath(ref, known, hub);
    const digest = await sha256OfFile(path);
    if (pin !== undefined && digest !== pin) {
      throw new Error(`${path} (in the Hugging Face cache for ${source}) has sha256 ${digest}, but ${pin} was pinned: fix the pin, or pin the revision (@<commit>) the pin is for`);
    }
    return { path, url, sha256: digest, commit: known, fetched: false };
  }
  const byHand =
    `Without network access, run \`huggingface-cli download ${ref.repo} ${ref.file}${ref.revision === 'main' ? '' : ` --revision ${ref.revision}`}\` ` +
    `elsewhere and copy ${repoFolder(ref, hub)} here, or put the file at ${snapshotPath(ref, known ?? '<commit>', hub)}` +
    `${known === undefined && !COMMIT.test(ref.revision) ? ` and that commit into ${refPath(ref, hub)}` : ''} (or set HF_HUB_CACHE / HF_HOME / HF_ENDPOINT).`;
  return download(ref, url, hub, pin, byHand, opts);
}

interface HubAnswer {
  res: Response;
  commit: string;
  /** The blob's name: the LFS sha256, else the git blob id. */
  etag: string | undefined;
}

/** The hub answers /resolve/ with the commit and etag, then (for LFS files) a redirect to its CDN. */
async function ask(url: string, ref: HfRef, byHand: string, opts: DownloadOptions): Promise<HubAnswer> {
  const token = process.env.HF_TOKEN;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'manual', signal: opts.signal, headers });
    const commit = res.headers.get('x-repo-commit') ?? undefined;
    const etag = unquote(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      void res.body?.cancel();
      // The CDN gets no token: it is a signed URL, and the hub's token is not its business.
      res = await fetch(new URL(location, url), { redirect: 'follow', signal: opts.signal });
    }
    if (!res.ok || !res.body) {
      void res.body?.cancel();
      throw new Error(`HTTP ${res.status} ${res.statusText}${res.status === 401 || res.status === 403 ? ' (a gated repo needs HF_TOKEN)' : ''}`);
    }
    if (commit === undefined || !COMMIT.test(commit)) {
      void res.body.cancel();
      throw new Error(`the hub did not say which commit ${ref.revision} is (no X-Repo-Commit header)`);
    }
    return { res, commit, etag };
  } catch (e) {
    const cause = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
    throw new Error(`could not download ${url}: ${cause}. ${byHand}`);
  }
}

async function download(ref: HfRef, url: string, hub: string, pin: string | undefined, byHand: string, opts: DownloadOptions): Promise<Downloaded> {
  const { res, commit, etag } = await ask(url, ref, byHand, opts);
  const folder = repoFolder(ref, hub);
  const total = Number(res.headers.get('content-length')) || undefined;
  const hash = createHash('sha256');
  let done = 0;
  const name = etag !== undefined && /^[0-9a-f]{40,64}$/.test(etag) ? etag : undefined;
  const tmp = join(folder, 'blobs', `${name ?? 'download'}.${process.pid}.${Date.now()}.incomplete`);
  try {
    await mkdir(dirname(tmp), { recursive: true });
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      done += chunk.length;
      opts.onProgress?.(done, total);
    });
    await pipeline(body, createWriteStream(tmp));
    if (total !== undefined && done !== total) throw new Error(`got ${done} of ${total} bytes`);
    const digest = hash.digest('hex');
    // An LFS etag is the file's sha256: a free check that the bytes are the hub's.
    if (name !== undefined && name.length === 64 && digest !== name) throw new Error(`sha256 is ${digest}, but the hub's etag says ${name}`);
    if (pin !== undefined && digest !== pin) throw new Error(`sha256 is ${digest}, but ${pin} was pinned`);
    const blob = join(folder, 'blobs', name ?? digest);
    await rename(tmp, blob);
    const path = snapshotPath(ref, commit, hub);
    await link(blob, path);
    if (!COMMIT.test(ref.revision)) {
      await mkdir(dirname(refPath(ref, hub)), { recursive: true });
      await writeFile(refPath(ref, hub), commit);
    }
    return { path, url, sha256: digest, commit, fetched: true };
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`could not download ${url}: ${msg}. ${byHand}`);
  }
}

/** snapshots/<commit>/<file> -> ../../blobs/<etag>, relative as huggingface_hub makes it; a copy where links are not allowed. */
async function link(blob: string, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await unlink(path).catch(() => undefined);
  try {
    await symlink(relative(dirname(path), blob), path);
  } catch {
    await copyFile(blob, path);
  }
}

function unquote(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}
