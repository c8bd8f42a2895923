// The two DICOMweb calls an import needs: QIDO-RS to list instances (with the attributes asked
// for), WADO-RS to fetch one as a Part-10 file in a given transfer syntax. Credentials come from the environment only, so they never reach a pipeline file or
// a cache key: $MEDPIPE_DICOMWEB_TOKEN (Bearer) or $MEDPIPE_DICOMWEB_USER/_PASSWORD (Basic).
import { firstPart } from './multipart.js';

/** One instance of a QIDO-RS answer, in the DICOM JSON model: tag (8 hex) -> {vr, Value}. */
export type DicomJson = Record<string, { vr?: string; Value?: unknown[] } | undefined>;

export class DicomWebError extends Error {}

export const TOKEN_ENV = 'MEDPIPE_DICOMWEB_TOKEN';
export const USER_ENV = 'MEDPIPE_DICOMWEB_USER';
export const PASSWORD_ENV = 'MEDPIPE_DICOMWEB_PASSWORD';

export function authHeader(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env[TOKEN_ENV]) return `Bearer ${env[TOKEN_ENV]}`;
  if (env[USER_ENV]) return `Basic ${Buffer.from(`${env[USER_ENV]}:${env[PASSWORD_ENV] ?? ''}`).toString('base64')}`;
  return undefined;
}

/** The server's base URL, e.g. http://127.0.0.1:8042/dicom-web; user:password in it is refused. */
export function serviceUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DicomWebError(`option url ${JSON.stringify(url)} is not a URL (expected e.g. http://127.0.0.1:8042/dicom-web)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DicomWebError(`option url must be http(s), got ${u.protocol}`);
  if (u.username || u.password) throw new DicomWebError(`option url must not hold credentials (they would enter the cache key): set ${TOKEN_ENV} or ${USER_ENV}/${PASSWORD_ENV}`);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/**
 * WADO-RS Accept for one transfer syntax, or '*' for "as stored". A list of the decodable
 * syntaxes would be the standard's way, but Orthanc's DICOMweb plugin (1.7) answers a list with
 * HTTP 500; so the importer asks for the stored syntax and, when the decoder cannot read that,
 * asks again for Explicit VR Little Endian, which every server transcodes to.
 */
export function wadoAccept(transferSyntax: string): string {
  return `multipart/related; type="application/dicom"; transfer-syntax=${transferSyntax}`;
}

async function get(url: URL, accept: string, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { accept };
  const auth = authHeader();
  if (auth) headers['authorization'] = auth;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    throw new DicomWebError(`GET ${url.href}: ${cause}`);
  }
  if (!res.ok) {
    void res.body?.cancel();
    const hint = res.status === 401 || res.status === 403 ? ` (set ${TOKEN_ENV} or ${USER_ENV}/${PASSWORD_ENV})` : '';
    throw new DicomWebError(`GET ${url.href}: HTTP ${res.status} ${res.statusText}${hint}`);
  }
  return res;
}

export interface QidoQuery {
  study?: string;
  series?: string;
  /** Further QIDO-RS matching keys, e.g. {Modality: 'MG'}. */
  filters?: Record<string, string>;
  /** Attributes to return beyond the defaults (tags or keywords). */
  include?: readonly string[];
}

const PAGE = 500;

/** Every instance matching the query, page by page (limit/offset). */
export async function searchInstances(base: URL, query: QidoQuery, signal?: AbortSignal): Promise<DicomJson[]> {
  const path = query.study ? (query.series ? `studies/${query.study}/series/${query.series}/instances` : `studies/${query.study}/instances`) : 'instances';
  const all: DicomJson[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const url = new URL(path, base);
    if (!query.study && query.series) url.searchParams.set('SeriesInstanceUID', query.series);
    for (const [k, v] of Object.entries(query.filters ?? {})) url.searchParams.set(k, v);
    for (const f of query.include ?? []) url.searchParams.append('includefield', f);
    url.searchParams.set('limit', String(PAGE));
    url.searchParams.set('offset', String(offset));
    const res = await get(url, 'application/dicom+json', signal);
    const text = await res.text();
    const page: unknown = text.trim() === '' ? [] : JSON.parse(text);
    if (!Array.isArray(page)) throw new DicomWebError(`QIDO-RS ${url.href}: expected a JSON array of instances`);
    all.push(...(page as DicomJson[]));
    if (page.length < PAGE) return all;
  }
}

/** One instance as the Part-10 bytes WADO-RS sends, in the syntax asked for ('*': as stored). */
export async function retrieveInstance(base: URL, study: string, series: string, sop: string, transferSyntax: string, signal?: AbortSignal): Promise<Uint8Array> {
  const url = new URL(`studies/${study}/series/${series}/instances/${sop}`, base);
  const res = await get(url, wadoAccept(transferSyntax), signal);
  const type = res.headers.get('content-type') ?? '';
  const body = new Uint8Array(await res.arrayBuffer());
  try {
    return firstPart(body, type);
  } catch (e) {
    throw new DicomWebError(`WADO-RS ${url.href}: ${(e as Error).message}`);
  }
}

/** The first value of a tag ("0020000D") or undefined; strings as they are, numbers as text. */
export function attribute(instance: DicomJson, tag: string): string | undefined {
  const v = instance[tag.toUpperCase()]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object' && 'Alphabetic' in (v as Record<string, unknown>)) return String((v as { Alphabetic: unknown }).Alphabetic);
  return String(v);
}
