import { selectNodes } from '../graph/select.js';
import { openPipeline, type CliEnv, type Opened } from './session.js';
import { planNodes } from '../run/plan.js';
import { describeReason } from '../run/reason.js';
import type { Manifest } from '../store/artifacts.js';
import { holdingCache } from '../store/cache-lock.js';
import { listManifests } from '../store/maintenance.js';
import { defaultCacheDir, Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { chooseRemote, openRemote, REMOTE_ENV } from '../remote/open.js';
import { RemoteCache, type PushOutcome } from '../remote/remote-cache.js';
import { CACHE_KEY_ENV } from '../remote/sign.js';
import { checkTrust, chooseTrust } from '../remote/trust.js';

export interface RemoteFlags {
  cache?: string;
  set: string[];
  remote?: string;
  remoteTrust?: string;
}

export interface PushFlags extends RemoteFlags {
  /** Also download and hash what the remote holds, replacing whatever fails. */
  repair?: boolean;
}


/**
 * The remote a command talks to (--remote, $MEDPIPE_REMOTE, the pipeline's `remote:`), if any.
 * `remote_trust: signed` (or --remote-trust signed) refuses one that has no team key to verify with.
 */
export function remoteFor(flags: Pick<RemoteFlags, 'remote' | 'remoteTrust'>, opened: Opened | undefined, store: Store, whenUnavailable?: string): RemoteCache | undefined {
  const raw = opened?.pipeline.spec.raw;
  const spec = chooseRemote(flags.remote, raw?.['remote'], opened?.pipeline.spec.baseDir ?? process.cwd());
  if (!spec) return undefined;
  const teamKey = process.env[CACHE_KEY_ENV] || undefined;
  const trust = chooseTrust(flags.remoteTrust, raw?.['remote_trust']);
  const source = flags.remoteTrust !== undefined ? '--remote-trust' : (opened?.pipeline.spec.file ?? 'remote_trust');
  const remote = openRemote(spec);
  checkTrust(trust, teamKey, remote.url, source);
  return new RemoteCache(remote, store, {
    ...(teamKey ? { teamKey } : {}),
    ...(whenUnavailable ? { whenUnavailable } : {}),
    warn: (message) => process.stderr.write(`warning: ${message}\n`),
  });
}

function requireRemote(flags: Pick<RemoteFlags, 'remote' | 'remoteTrust'>, opened: Opened | undefined, store: Store, whenUnavailable?: string): RemoteCache {
  const remote = remoteFor(flags, opened, store, whenUnavailable);
  if (!remote) throw new ConfigError(`no remote cache configured: pass --remote URL, set ${REMOTE_ENV}, or add \`remote:\` to the pipeline`, { file: '--remote', line: 0, col: 0 });
  return remote;
}

/**
 * `cache push [pipeline] [targets]`: the selected nodes' local results, or every local result.
 * An entry already there stays unless it is broken (then this one replaces it); one that differs
 * is adopted locally. --repair also downloads and hashes the remote's blobs to find broken ones.
 */
export async function cachePush(file: string | undefined, targets: string[], flags: PushFlags, env: CliEnv): Promise<number> {
  const store = new Store(defaultCacheDir(flags.cache));
  let remote: RemoteCache | undefined;
  try {
    let manifests: Manifest[];
    let notLocal = 0;
    let opened: Opened | undefined;
    if (file) {
      opened = await openPipeline(file, flags.set, env);
      const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets }));
      manifests = [...outcomes.values()].flatMap((o) => (o.state === 'cached' && o.manifest ? [o.manifest] : []));
      notLocal = outcomes.size - manifests.length;
    } else manifests = listManifests(store);
    remote = requireRemote(flags, opened, store);
    const counts: Record<PushOutcome, number> = { pushed: 0, present: 0, repaired: 0, adopted: 0, orphaned: 0, failed: 0 };
    for (const m of manifests) counts[await remote.push(m, { repair: Boolean(flags.repair) })]++;
    const extra = [
      counts.repaired || flags.repair ? `, ${counts.repaired} broken remote entr${counts.repaired === 1 ? 'y' : 'ies'} repaired` : '',
      counts.adopted ? `, ${counts.adopted} differed from the remote's and were replaced locally by it (first committed wins)` : '',
      counts.orphaned ? `, ${counts.orphaned} not pushed (built on a replaced result)` : '',
      counts.failed ? `, ${counts.failed} failed` : '',
    ].join('');
    process.stdout.write(`${counts.pushed} pushed, ${counts.present} already on ${remote.url}${extra}${notLocal ? ` (${notLocal} selected node(s) not cached locally)` : ''}\n`);
    return counts.failed > 0 ? 1 : 0;
  } finally {
    await remote?.close();
    await store.close();
  }
}

/** `cache pull <pipeline> [targets]`: downloads what the remote has of the selected nodes. */
export async function cachePull(file: string, targets: string[], flags: RemoteFlags, env: CliEnv): Promise<number> {
  const store = new Store(defaultCacheDir(flags.cache));
  const opened = await openPipeline(file, flags.set, env);
  const remote = requireRemote(flags, opened, store, 'nothing pulled from it');
  try {
    // Shared, as a run: a pulled node's blobs are in the cache before its manifest is, so gc would see them as garbage.
    const pull = () => planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets }), { pullInDryRun: true, remote });
    const outcomes = await holdingCache(store, 'shared', `pipeline cache pull ${file}`, pull, (m) => process.stderr.write(m));
    const all = [...outcomes.values()];
    const pulled = all.filter((o) => o.state === 'cached' && o.reason?.why === 'on-remote').length;
    const local = all.filter((o) => o.state === 'cached').length - pulled;
    const missing = all.filter((o) => o.state === 'would-run').length;
    const failed = all.filter((o) => o.state === 'failed');
    for (const o of failed) process.stderr.write(`error: ${o.reason ? describeReason(o.reason) : 'failed'}\n`);
    // Unreachable is not "not there": a node the remote could not be asked about is not counted as missing.
    const absent = remote.unreachable > 0 ? `${missing} not pulled (the remote could not be reached)` : `${missing} not on ${remote.url}`;
    process.stdout.write(`${pulled} pulled, ${local} already local, ${absent}\n`);
    return failed.length > 0 || remote.unreachable > 0 ? 1 : 0;
  } finally {
    await remote.close();
    await store.close();
  }
}
