/**
 * The one check for names that come from outside this process (a remote, a manifest read back
 * from disk, a CLI argument) before they become part of a path: a digest or a cache key is
 * exactly 64 lower-case hex characters, so it can never hold a separator or `..`.
 */
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX.test(value);
}

export class InvalidNameError extends Error {
  constructor(
    readonly what: string,
    readonly value: unknown,
  ) {
    super(`${what}: ${JSON.stringify(String(value)).slice(0, 80)} is not a sha256 digest (64 lower-case hex characters); refusing to use it as a path`);
    this.name = 'InvalidNameError';
  }
}

/** Returns the digest, or throws naming where it came from. Cache keys are sha256 digests too. */
export function assertDigest(value: unknown, what: string): string {
  if (!isDigest(value)) throw new InvalidNameError(what, value);
  return value;
}
