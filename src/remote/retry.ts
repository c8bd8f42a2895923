// Retries for remote requests that failed the way a flaky network or an overloaded proxy fails
// (a reset, a 502/503/504, a 429), with exponential backoff and jitter (p-retry's loop), bounded, and
// one warning line per operation that needed them. A server that is not there at all (refused,
// no such host) is not retried: that is a remote that is down, which callers already turn into
// a warning and a local run, and retrying it would only make every node wait.
import pRetry from 'p-retry';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** Delay before the first retry, in ms; doubled each time, times a random factor in [1, 2). */
  minTimeout: number;
  maxTimeout: number;
}

export const RETRIES_ENV = 'MEDPIPE_REMOTE_RETRIES';

/** 5 retries: about 0.25 + 0.5 + 1 + 2 + 4 s (jittered up to twice that) before giving up. */
export function defaultRetryPolicy(env: NodeJS.ProcessEnv = process.env): RetryPolicy {
  const raw = env[RETRIES_ENV];
  const retries = raw === undefined || raw === '' ? 5 : Number(raw);
  if (!Number.isInteger(retries) || retries < 0 || retries > 20) throw new Error(`${RETRIES_ENV}=${raw}: expected an integer from 0 to 20`);
  return { retries, minTimeout: 250, maxTimeout: 8000 };
}

/** A failure worth another attempt; `retryAfterMs` from the server's Retry-After, if any. */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TransientError';
  }
}

/** Statuses a proxy or an overloaded server answers before doing anything lasting. */
export const UNPROCESSED_STATUSES: ReadonlySet<number> = new Set([429, 503]);
/** Also transient, but the request may have been carried out (a gateway lost the answer). */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);

/**
 * Socket errors of a connection that was there and broke (undici's own codes included). Not
 * here: refused, no such host, unreachable, fetch's "bad port" — a remote that is down.
 */
const FLAKY_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The error code under fetch's "fetch failed" (undici puts the socket error in `cause`). */
export function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Whether a thrown network error is the flaky kind (reset, closed mid-answer, timeout). */
export function isTransientNetworkError(err: unknown): boolean {
  const code = networkCode(err);
  return code !== undefined && FLAKY_CODES.has(code);
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The wait before retry number `retry` (1 for the first): minTimeout doubled per retry, times a
 * jitter factor in [1, 2), at least what the server's Retry-After asked for, and never past
 * maxTimeout. Computed here rather than by p-retry (whose 7.x, the last for Node 20, does not
 * say the delay it chose), so Retry-After is one rule.
 */
export function retryDelayMs(policy: RetryPolicy, retry: number, retryAfter: number | undefined, random: number = Math.random()): number {
  const backoff = policy.minTimeout * 2 ** (retry - 1) * (1 + random);
  return Math.round(Math.min(Math.max(backoff, retryAfter ?? 0), policy.maxTimeout));
}

/**
 * Runs `attempt` until it succeeds, throws something other than a TransientError, or the
 * retries run out; then the last error is rethrown with "(after N retries: …)" added.
 */
export async function withRetries<T>(label: string, policy: RetryPolicy, warn: (message: string) => void, attempt: () => Promise<T>): Promise<T> {
  const failures: string[] = [];
  let attempts = 0;
  try {
    const result = await pRetry(
      () => {
        attempts++;
        return attempt();
      },
      {
        retries: policy.retries,
        // p-retry only counts and loops: the wait is retryDelayMs's, taken in onFailedAttempt.
        minTimeout: 0,
        maxTimeout: 0,
        shouldRetry: ({ error }) => error instanceof TransientError,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          if (!(error instanceof TransientError)) return;
          failures.push(error.message);
          if (retriesLeft > 0) await new Promise((r) => setTimeout(r, retryDelayMs(policy, attemptNumber, error.retryAfterMs)));
        },
      },
    );
    if (attempts > 1) warn(`${label}: succeeded after ${retries(attempts - 1)} (${summary(failures)})`);
    return result;
  } catch (err) {
    // The failures that were retried: every attempt's but the last one's.
    const retried = failures.slice(0, attempts - 1);
    if (attempts > 1 && err instanceof Error) err.message += ` (after ${retries(attempts - 1)}: ${summary(retried)})`;
    throw err;
  }
}

function retries(n: number): string {
  return `${n} ${n === 1 ? 'retry' : 'retries'}`;
}

/** Distinct reasons with counts, so ten 503s read as one phrase. */
function summary(failures: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const f of failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  return [...counts].map(([reason, n]) => (n > 1 ? `${n}x ${reason}` : reason)).join('; ');
}
