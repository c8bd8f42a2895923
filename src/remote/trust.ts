import { ConfigError } from '../util/errors.js';
import { CACHE_KEY_ENV } from './sign.js';

/**
 * `any`: signed entries are required only when a team key is set (the default, with a warning
 * when it is not); `signed`: a remote is used only with a team key, so nothing unsigned or
 * wrongly signed (manifest, checkpoint, lease) is ever trusted.
 */
export type RemoteTrust = 'any' | 'signed';
export const TRUST_VALUES: readonly RemoteTrust[] = ['any', 'signed'];

/** --remote-trust, then the pipeline's `remote_trust:`; the schema has already checked the latter. */
export function chooseTrust(flag: string | undefined, fromPipeline: unknown): RemoteTrust {
  if (flag !== undefined && !(TRUST_VALUES as readonly string[]).includes(flag)) {
    throw new ConfigError(`must be one of ${TRUST_VALUES.join(', ')}, got ${JSON.stringify(flag)}`, { file: '--remote-trust', line: 0, col: 0 });
  }
  return (flag as RemoteTrust | undefined) ?? (fromPipeline === 'signed' ? 'signed' : 'any');
}

/** Refuses, before anything is read, a remote that `signed` trust cannot verify. */
export function checkTrust(trust: RemoteTrust, teamKey: string | undefined, url: string, source: string): void {
  if (trust === 'signed' && !teamKey) {
    throw new ConfigError(`remote_trust is signed but ${CACHE_KEY_ENV} is not set, so nothing on ${url} can be verified: set ${CACHE_KEY_ENV} to the team's secret, or use --remote none`, { file: source, line: 0, col: 0 });
  }
}

/** What a run on an unsigned remote says once: the risk, and the fix. */
export function unsignedWarning(url: string): string {
  return (
    `remote ${url} is used without a team key: anyone who can write to it can plant results, checkpoints and leases that this run ` +
    `takes as its own (and pushes results built on them), and nothing here can tell. ` +
    `Set ${CACHE_KEY_ENV} to a secret shared by the team (the same on every machine) to sign and verify entries, ` +
    `and add \`remote_trust: signed\` to the pipeline (or pass --remote-trust signed) to refuse a remote without one`
  );
}
