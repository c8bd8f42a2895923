import { selectNodes } from '../graph/select.js';
import { openPipeline, type CliEnv, type Opened } from './session.js';
import { planNodes } from '../run/plan.js';
import { describeReason } from '../run/reason.js';
import type { Manifest } from '../store/artifacts.js';
import { listManifests } from '../store/maintenance.js';
import { defaultCacheDir, Store } from '../store/store.js';
import { ConfigError } from '../util/errors.js';
import { chooseRemote, openRemote, REMOTE_ENV } from '../remote/open.js';
import { RemoteCache } from '../remote/remote-cache.js';
import { CACHE_KEY_ENV } from '../remote/sign.js';

export interface RemoteFlags {
  cache?: string;
  set: string[];
  remote?: string;
}


/** The remote a command talks to (--remote, $MEDPIPE_REMOTE, the pipeline's `remote:`), if any. */
export function remoteFor(flag: string | undefined, opened: Opened | undefined, store: Store): RemoteCache | undefined {
  const spec = chooseRemote(flag, opened?.pipeline.spec.raw['remote'], opened?.pipeline.spec.baseDir ?? process.cwd());
  if (!spec) return undefined;
  return new RemoteCache(openRemote(spec), store, {
    ...(process.env[CACHE_KEY_ENV] ? { teamKey: process.env[CACHE_KEY_ENV] } : {}),
    warn: (message) => process.stderr.write(`warning: ${message}\n`),
  });
}

function requireRemote(flag: string | undefined, opened: Opened | undefined, store: Store): RemoteCache {
  const remote = remoteFor(flag, opened, store);
  if (!remote) throw new ConfigError(`no remote cache configured: pass --remote URL, set ${REMOTE_ENV}, or add \`remote:\` to the pipeline`, { file: '--remote', line: 0, col: 0 });
  return remote;
}

/** `cache push [pipeline] [targets]`: the selected nodes' local results, or every local result. */
export async function cachePush(file: string | undefined, targets: string[], flags: RemoteFlags, env: CliEnv): Promise<number> {
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
    remote = requireRemote(flags.remote, opened, store);
    const counts = { pushed: 0, present: 0, failed: 0 };
    for (const m of manifests) counts[await remote.push(m)]++;
    process.stdout.write(`${counts.pushed} pushed, ${counts.present} already on ${remote.url}${counts.failed ? `, ${counts.failed} failed` : ''}${notLocal ? ` (${notLocal} selected node(s) not cached locally)` : ''}\n`);
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
  const remote = requireRemote(flags.remote, opened, store);
  try {
    const outcomes = await planNodes({ ...opened, store }, selectNodes(opened.pipeline, opened.dag, { targets }), { pullInDryRun: true, remote });
    const all = [...outcomes.values()];
    const pulled = all.filter((o) => o.state === 'cached' && o.reason?.why === 'on-remote').length;
    const local = all.filter((o) => o.state === 'cached').length - pulled;
    const missing = all.filter((o) => o.state === 'would-run').length;
    const failed = all.filter((o) => o.state === 'failed');
    for (const o of failed) process.stderr.write(`error: ${o.reason ? describeReason(o.reason) : 'failed'}\n`);
    process.stdout.write(`${pulled} pulled, ${local} already local, ${missing} not on ${remote.url}\n`);
    return failed.length > 0 ? 1 : 0;
  } finally {
    await remote.close();
    await store.close();
  }
}
