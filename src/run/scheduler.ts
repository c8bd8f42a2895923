import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { JSONValue } from '../contract.js';
import type { ExpandedPipeline, NodeInstance } from '../config/expand.js';
import type { Dag } from '../graph/dag.js';
import { explainChange, keyMaterial, nodeKey, type KeyMaterial } from '../keys.js';
import type { Registry } from '../registry.js';
import { leaseOrWait } from '../remote/coordinate.js';
import type { RemoteCache } from '../remote/remote-cache.js';
import type { Manifest } from '../store/artifacts.js';
import type { Store } from '../store/store.js';
import { fingerprintContext } from './context.js';
import { isGraphExecutor, type Executor, type GraphExecutor } from './executor.js';
import type { Job } from './job.js';
import type { NodeState, Reporter } from './reporter.js';
import type { Capacity } from './slots.js';
import { Slots, type Release } from './slots.js';
import { sleep } from '../util/sleep.js';

export interface RunContext {
  pipeline: ExpandedPipeline;
  dag: Dag;
  registry: Registry;
  store: Store;
}

export interface RunOptions {
  capacity: Capacity;
  dryRun: boolean;
  signal: AbortSignal;
  /** A GraphExecutor (SLURM) takes over real runs whole; dry runs always plan here. */
  executor: Executor | GraphExecutor;
  reporter: Reporter;
  lockTtlMs?: number;
  /** Shared cache: pulled on a local miss, leased while computing, pushed after each success. */
  remote?: RemoteCache;
  /** With dryRun, download remote hits (`cache pull`) instead of only looking at their manifests. */
  pullInDryRun?: boolean;
}

export interface NodeOutcome {
  state: Extract<NodeState, 'cached' | 'ran' | 'failed' | 'skipped' | 'would-run' | 'interrupted'>;
  key?: string;
  manifest?: Manifest;
  /** Why it ran (or would run), why it failed, or which upstream stopped it. */
  reason?: string;
  log?: string;
}


/** A manifest is a hit only while everything it points at is still in the store. */
export async function artifactsPresent(store: Store, manifest: Manifest): Promise<boolean> {
  for (const a of Object.values(manifest.outputs)) {
    if (a.type === 'file') {
      try {
        const st = await stat(store.blobs.pathOf(a.digest));
        if (st.size !== a.size) return false;
      } catch {
        return false;
      }
    } else if (a.type === 'records' && !store.records.hasSet(a.set)) return false;
  }
  return true;
}

export interface Resolved {
  material: KeyMaterial;
  key: string;
}

/** What computing a key needs: a compute node running one SLURM task has no whole pipeline. */
export interface KeyContext {
  pipeline: { spec: { baseDir: string } };
  registry: Registry;
  store: Store;
}

/** Key of a node whose inputs are all known (parents finished or cached). */
export async function resolveKey(rc: KeyContext, node: NodeInstance, parentManifest: (id: string) => Manifest): Promise<Resolved> {
  const kind = rc.registry.get(node.kind)!.kind;
  let external: JSONValue | undefined;
  const fctx = fingerprintContext(rc.store, rc.pipeline.spec.baseDir);
  if (kind.check) {
    const problems = await kind.check(node.params, fctx);
    if (problems.length > 0) throw new Error(`inputs not ready:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  if (kind.fingerprint) external = await kind.fingerprint(node.params, fctx);
  const material = keyMaterial(
    node,
    kind,
    (up, output) => {
      const artifact = parentManifest(up).outputs[output];
      if (!artifact) throw new Error(`${up} has no output "${output}" in its cached result (kind changed without a version bump?)`);
      return artifact.digest;
    },
    external,
  );
  return { material, key: nodeKey(material) };
}

export function whyRun(rc: RunContext, node: NodeInstance, material: KeyMaterial): string {
  const last = rc.store.lastKnown(rc.pipeline.spec.name, node.id);
  if (!last) return 'never run';
  return explainChange(last.material, material).join('; ');
}

/** Runs the selected nodes in dependency order, in parallel where resources allow. */
export async function runNodes(rc: RunContext, selected: Set<string>, options: RunOptions): Promise<Map<string, NodeOutcome>> {
  const { executor } = options;
  if (isGraphExecutor(executor)) {
    if (!options.dryRun) return executor.runGraph(rc, selected, options);
  }
  const { store, dag, pipeline, registry } = rc;
  const { reporter, signal } = options;
  const slots = new Slots(options.capacity);
  const ttl = options.lockTtlMs ?? 30_000;
  const outcomes = new Map<string, Promise<NodeOutcome>>();
  const order = dag.order.filter((id) => selected.has(id));
  reporter.start(
    pipeline.spec.name,
    order.map((id) => ({ id, stage: pipeline.nodes.get(id)!.stage })),
  );

  const finish = (id: string, outcome: NodeOutcome): NodeOutcome => {
    reporter.update(id, outcome.state, outcome.reason);
    return outcome;
  };

  const runOne = async (id: string): Promise<NodeOutcome> => {
    const node = pipeline.nodes.get(id)!;
    const parents = dag.graph.inNeighbors(id);
    const parentOutcomes = await Promise.all(parents.map((p) => outcomes.get(p)!));
    const blocked = parents.find((_, i) => ['failed', 'skipped', 'interrupted'].includes(parentOutcomes[i]!.state));
    if (blocked) return finish(id, { state: 'skipped', reason: `upstream ${blocked} did not finish` });
    const pendingParent = parents.find((_, i) => parentOutcomes[i]!.state === 'would-run');
    if (pendingParent) return finish(id, { state: 'would-run', reason: `upstream ${pendingParent} will run` });
    const manifests = new Map(parents.map((p, i) => [p, parentOutcomes[i]!.manifest!]));

    let resolved: Resolved;
    try {
      resolved = await resolveKey(rc, node, (p) => manifests.get(p)!);
    } catch (err) {
      return finish(id, { state: 'failed', reason: (err as Error).message });
    }
    const { key, material } = resolved;
    // One owner per attempt: two instances of this run with the same key must not share a lock.
    const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
    const remember = () => store.remember(pipeline.spec.name, id, { key, material });
    const hit = async (): Promise<Manifest | undefined> => {
      const m = store.manifest(key);
      if (!m) return undefined;
      if (await artifactsPresent(store, m)) return m;
      await store.invalidate(key);
      return undefined;
    };

    let cachedManifest = await hit();
    if (cachedManifest) {
      await remember();
      return finish(id, { state: 'cached', key, manifest: cachedManifest });
    }
    if (options.remote) {
      const pulled = options.dryRun && !options.pullInDryRun ? await options.remote.peek(key) : await options.remote.pull(key);
      if (pulled) {
        if (!options.dryRun || options.pullInDryRun) await remember();
        return finish(id, { state: 'cached', key, manifest: pulled, reason: `on remote ${options.remote.url}` });
      }
    }
    const reason = whyRun(rc, node, material);
    if (options.dryRun) return finish(id, { state: 'would-run', key, reason });
    if (signal.aborted) return finish(id, { state: 'interrupted', key });

    // Lock before taking a slot, so a node another process is computing does not hold one here.
    for (let announced = false; !store.tryLock(key, id, owner, ttl); ) {
      cachedManifest = await hit();
      if (cachedManifest) {
        await remember();
        return finish(id, { state: 'cached', key, manifest: cachedManifest, reason: 'computed by another run' });
      }
      if (!announced) {
        const holder = store.lockHolder(key);
        reporter.update(id, 'waiting', holder ? `computed by ${holder.host} pid ${holder.pid}` : 'waiting for lock');
        announced = true;
      }
      await sleep(200, signal);
      if (signal.aborted) return finish(id, { state: 'interrupted', key });
    }
    const heartbeat = setInterval(() => store.renewLock(key, owner, ttl), ttl / 3);
    let release: Release | undefined;
    let remoteHeartbeat: NodeJS.Timeout | undefined;
    let leased = false;
    try {
      cachedManifest = await hit();
      if (cachedManifest) {
        await remember();
        return finish(id, { state: 'cached', key, manifest: cachedManifest, reason: 'computed by another run' });
      }
      if (options.remote) {
        const remote = options.remote;
        const waited = await leaseOrWait(remote, key, owner, signal, (holder) =>
          reporter.update(id, 'waiting', holder ? `computed by ${holder.host} pid ${holder.pid} (remote lease)` : 'waiting for remote lease'),
        );
        if ('interrupted' in waited) return finish(id, { state: 'interrupted', key });
        if (!waited.compute) {
          await remember();
          return finish(id, { state: 'cached', key, manifest: waited.manifest, reason: 'computed by another run (remote)' });
        }
        leased = waited.leased;
        if (leased) remoteHeartbeat = setInterval(() => void remote.renew(key, owner), remote.leaseTtlMs / 3);
      }
      const kindEntry = registry.get(node.kind)!;
      release = await slots.acquire(slots.needOf(node.resources, id), signal);
      reporter.update(id, 'running', reason);
      const job: Job = {
        cacheDir: store.dir,
        pipeline: pipeline.spec.name,
        baseDir: pipeline.spec.baseDir,
        node: { id, stage: node.stage, kind: node.kind, axes: node.axes, params: node.params },
        kindModule: kindEntry.module,
        key,
        material,
        inputs: Object.fromEntries(
          Object.entries(node.inputs).map(([name, input]) => [
            name,
            { many: input.many, entries: input.upstream.map((u) => ({ node: u.node, axes: u.axes, artifact: manifests.get(u.node)!.outputs[u.output]! })) },
          ]),
        ),
        log: store.logPath(id, key),
        ...(options.remote ? { remote: options.remote.spec } : {}),
        ...(release.gpus.length > 0 ? { gpus: release.gpus } : {}),
      };
      if (isGraphExecutor(executor)) throw new Error(`executor ${executor.name} cannot run single jobs`);
      const result = await executor.run(job, (text) => reporter.progress(id, text), signal);
      const manifest = store.manifest(key);
      if (result.ok && manifest) {
        await remember();
        // Before the lease goes, so whoever waits on it finds the result.
        await options.remote?.push(manifest);
        return finish(id, { state: 'ran', key, manifest, reason, log: job.log });
      }
      const error = result.ok ? 'worker finished without publishing a result' : result.error;
      return finish(id, { state: !result.ok && result.interrupted ? 'interrupted' : 'failed', key, reason: error, log: job.log });
    } catch (err) {
      return finish(id, { state: signal.aborted ? 'interrupted' : 'failed', key, reason: (err as Error).message });
    } finally {
      release?.();
      clearInterval(heartbeat);
      clearInterval(remoteHeartbeat);
      if (leased) await options.remote?.release(key, owner);
      store.unlock(key, owner);
    }
  };

  for (const id of order) outcomes.set(id, runOne(id));
  const results = new Map<string, NodeOutcome>();
  for (const id of order) results.set(id, await outcomes.get(id)!);
  await reporter.finish();
  return results;
}
