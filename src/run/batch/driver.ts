// The submit side of a batch run (`pipeline run --executor slurm`): plans every selected node
// (cached, or a job), submits the whole DAG at once chained by dependencies, then follows the
// jobs. Nothing here is particular to one batch system: that is the BatchSystem's.
import { mkdirSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import type { JSONValue } from '../../contract.js';
import { descendantsOf } from '../../graph/dag.js';
import { expectedDurationMs, leaseIsStale } from '../../remote/coordinate.js';
import { live } from '../../remote/leases.js';
import type { RemoteCache } from '../../remote/remote-cache.js';
import type { KeyMaterial } from '../../keys.js';
import type { Manifest } from '../../store/artifacts.js';
import { digestJSON } from '../../util/hash.js';
import { sleep } from '../../util/sleep.js';
import { artifactsPresent, resolveKey, whyRun } from '../decide.js';
import type { GraphExecutor } from '../types.js';
import { describeReason, error, type Reason } from '../reason.js';
import type { NodeOutcome, RunContext, RunOptions } from '../types.js';
import { readLedger, writeLedger, type Ledger } from './ledger.js';
import { isFinal, type BatchSystem, type JobInfo } from './system.js';
import { buildTask, taskShape } from './task.js';

export interface BatchExecutorOptions {
  /** Submit and return: jobs stay recorded under the cache dir for `status` and a later `run`. */
  detach?: boolean;
  /** How often the system is asked for states (default $MEDPIPE_SLURM_POLL_MS, else 10 s: login nodes are shared). */
  pollMs?: number;
  /** Ctrl-C while jobs are queued: resolve true to scancel them. */
  confirmCancel?(jobs: string[]): Promise<boolean>;
  /** Notes for the user (stderr). */
  note?(text: string): void;
}

interface JobPlan {
  type: 'job';
  job: string;
  /** Known when the node's inputs were cached at submission. */
  key?: string;
  material?: KeyMaterial;
  log: string;
  submittedAt: number;
}
type Plan = { type: 'final'; outcome: NodeOutcome } | JobPlan;

const BLOCKING = new Set(['failed', 'skipped', 'interrupted', 'would-run']);

/** Runs a whole selection as jobs of one batch system. */
export class BatchExecutor implements GraphExecutor {
  readonly name: string;
  private readonly pollMs: number;

  constructor(
    private readonly system: BatchSystem,
    private readonly opts: BatchExecutorOptions = {},
  ) {
    this.name = system.name.toLowerCase();
    this.pollMs = opts.pollMs ?? Number(process.env['MEDPIPE_SLURM_POLL_MS'] ?? 10_000);
  }

  async runGraph(rc: RunContext, selected: Set<string>, options: RunOptions): Promise<Map<string, NodeOutcome>> {
    const remote = options.remote;
    if (!remote) throw new Error(`the ${this.name} executor needs a remote cache that every compute node can reach (--remote, $MEDPIPE_REMOTE or \`remote:\`)`);
    return new BatchRun(rc, selected, options, remote, this.system, this.pollMs, this.opts).run();
  }
}

/** One batch `pipeline run`. */
class BatchRun {
  private readonly order: string[];
  private readonly plans = new Map<string, Promise<Plan>>();
  private readonly settled = new Map<string, Plan>();
  private readonly finals = new Map<string, NodeOutcome>();
  private readonly shown = new Map<string, string>();
  private readonly missing = new Map<string, number>();
  private readonly ledger: Ledger;
  private readonly name: string;
  private known = new Map<string, JobInfo>();

  constructor(
    private readonly rc: RunContext,
    selected: Set<string>,
    private readonly options: RunOptions,
    private readonly remote: RemoteCache,
    private readonly system: BatchSystem,
    private readonly pollMs: number,
    private readonly opts: BatchExecutorOptions,
  ) {
    this.order = rc.dag.order.filter((id) => selected.has(id));
    this.name = rc.pipeline.spec.name;
    this.ledger = readLedger(rc.store.dir, system.ledgerDir, this.name);
  }

  private note(text: string): void {
    (this.opts.note ?? ((t: string) => process.stderr.write(`${t}\n`)))(text);
  }

  private final(id: string, outcome: NodeOutcome): NodeOutcome {
    if (this.finals.has(id)) return this.finals.get(id)!;
    this.finals.set(id, outcome);
    this.options.reporter.update(id, outcome.state, outcome.reason && describeReason(outcome.reason));
    return outcome;
  }

  private show(id: string, state: 'waiting' | 'running', detail: string): void {
    if (this.shown.get(id) === `${state} ${detail}`) return;
    this.shown.set(id, `${state} ${detail}`);
    this.options.reporter.update(id, state, detail);
  }

  async run(): Promise<Map<string, NodeOutcome>> {
    const { reporter } = this.options;
    reporter.start(
      this.name,
      this.order.map((id) => ({ id, stage: this.rc.pipeline.nodes.get(id)!.stage })),
    );
    // What the system knows of jobs submitted before, to reattach to the live ones. Entries of jobs
    // that ended stay for `status` to show until a run like this one reports afresh.
    const recorded = Object.values(this.ledger).map((e) => e.job);
    try {
      this.known = await this.system.states(recorded);
      for (const [id, e] of Object.entries(this.ledger)) {
        const state = this.known.get(e.job)?.state;
        if (state !== 'PENDING' && state !== 'RUNNING') delete this.ledger[id];
      }
    } catch (err) {
      this.note(`warning: ${(err as Error).message}`);
    }
    for (const id of this.order) {
      const p = this.plan(id).then((plan) => (this.settled.set(id, plan), plan));
      this.plans.set(id, p);
    }
    const planned = Promise.all(this.plans.values());
    if (this.opts.detach) {
      await planned;
      for (const id of this.order) {
        const plan = this.settled.get(id)!;
        if (plan.type === 'job') this.final(id, { state: 'would-run', ...(plan.key ? { key: plan.key } : {}), reason: { why: 'queued', system: this.system.name, job: plan.job }, log: relative(this.rc.store.dir, plan.log) });
      }
    } else await this.follow(planned);
    writeLedger(this.rc.store.dir, this.system.ledgerDir, this.name, this.ledger);
    await reporter.finish();
    return new Map(this.order.map((id) => [id, this.finals.get(id)!]));
  }

  // ---- planning ------------------------------------------------------------------------------

  private async plan(id: string): Promise<Plan> {
    const { dag, store, pipeline } = this.rc;
    const parents = dag.graph.inNeighbors(id);
    const parentPlans = await Promise.all(parents.map((p) => this.plans.get(p)!));
    const fin = (outcome: NodeOutcome): Plan => ({ type: 'final', outcome: this.final(id, outcome) });
    if (this.options.signal.aborted) return fin({ state: 'interrupted' });
    const blocked = parents.find((_, i) => {
      const p = parentPlans[i]!;
      return p.type === 'final' && BLOCKING.has(p.outcome.state);
    });
    if (blocked) {
      const up = (this.settled.get(blocked) as { outcome: NodeOutcome }).outcome;
      return fin(up.state === 'would-run' ? { state: 'would-run', reason: { why: 'upstream-not-done', upstream: blocked } } : { state: 'skipped', reason: { why: 'upstream-stopped', upstream: blocked } });
    }
    const queuedParents = parentPlans.filter((p): p is JobPlan => p.type === 'job');
    let key: string | undefined;
    let material: KeyMaterial | undefined;
    let reason: Reason | string = 'upstream runs first';
    if (queuedParents.length === 0) {
      const manifests = new Map(parents.map((p, i) => [p, (parentPlans[i] as { outcome: NodeOutcome }).outcome.manifest!]));
      try {
        const resolved = await resolveKey(this.rc, pipeline.nodes.get(id)!, (p) => manifests.get(p)!);
        ({ key, material } = resolved);
        reason = whyRun(store, this.name, id, material);
      } catch (err) {
        return fin({ state: 'failed', reason: error((err as Error).message) });
      }
      const cached = await this.cached(id, key);
      if (cached) {
        await store.remember(this.name, id, { key, material });
        return fin(cached);
      }
    }
    const knownKey = (n: string): string | undefined => {
      if (n === id) return key;
      const p = this.settled.get(n);
      return p?.type === 'final' ? p.outcome.key : p?.key;
    };
    const node = pipeline.nodes.get(id)!;
    const log = this.system.logTemplate({ cacheDir: store.dir, pipeline: this.name, raw: pipeline.spec.raw, node });
    const task = buildTask({ pipeline: this.name, baseDir: pipeline.spec.baseDir, remote: this.remote.url, ...(this.remote.signed ? { signed: true } : {}), log, ...(this.rc.codeTrigger ? { codeTrigger: this.rc.codeTrigger } : {}) }, dag, this.rc.registry, id, knownKey);
    const digest = digestJSON(task as unknown as JSONValue);
    const { shape: shapeOf, known } = taskShape(task);
    const shape = digestJSON(shapeOf);

    const entry = this.ledger[id];
    const state = entry && this.known.get(entry.job)?.state;
    if (entry && (state === 'PENDING' || state === 'RUNNING')) {
      // The same task, or the same one submitted before some of its parents' keys were known.
      const compatible = entry.task === digest || (entry.shape === shape && Object.entries(entry.known ?? {}).every(([n, k]) => known[n] === k));
      if (compatible) {
        this.show(id, state === 'RUNNING' ? 'running' : 'waiting', `reattached to ${this.system.name} job ${entry.job}`);
        return { type: 'job', job: entry.job, ...(key && material ? { key, material } : {}), log: entry.log, submittedAt: Date.parse(entry.submitted) };
      }
      this.note(`note: ${this.system.name} job ${entry.job} (${id}) was submitted for a different version of this node; it is left in the queue (${this.system.stopHint(entry.job)} stops it)`);
    }
    if (key) {
      const waited = await this.waitForOtherRunner(id, key);
      if (waited) return fin(waited);
    }
    if (this.options.signal.aborted) return fin({ state: 'interrupted', ...(key ? { key } : {}) });

    mkdirSync(dirname(log), { recursive: true });
    let job: string;
    try {
      job = await this.system.submit({ pipeline: this.name, raw: pipeline.spec.raw, node, task: JSON.stringify({ ...task }), after: queuedParents.map((p) => p.job), log });
    } catch (err) {
      return fin({ state: 'failed', ...(key ? { key } : {}), reason: error((err as Error).message) });
    }
    const jobLog = this.system.logOf(log, job);
    const submitted = new Date();
    this.ledger[id] = { job, task: digest, shape, known, ...(key ? { key } : {}), log: jobLog, submitted: submitted.toISOString() };
    writeLedger(this.rc.store.dir, this.system.ledgerDir, this.name, this.ledger);
    this.show(id, 'waiting', `${this.system.name} job ${job} submitted (${typeof reason === 'string' ? reason : describeReason(reason)})`);
    return { type: 'job', job, ...(key && material ? { key, material } : {}), log: jobLog, submittedAt: submitted.getTime() };
  }

  /** A hit here or on the remote. A local hit is pushed first: compute nodes read only the remote. */
  private async cached(id: string, key: string): Promise<NodeOutcome | undefined> {
    const { store } = this.rc;
    const local = store.manifest(key);
    if (local && (await artifactsPresent(store, local))) {
      if (!(await this.remote.peek(key)) && (await this.remote.push(local)) === 'failed') {
        return { state: 'failed', key, reason: error(`cached here but could not be pushed to ${this.remote.url}, where its ${this.system.name} jobs would read it`) };
      }
      return { state: 'cached', key, manifest: local };
    }
    const onRemote = await this.remote.peek(key);
    return onRemote ? { state: 'cached', key, manifest: onRemote, reason: { why: 'on-remote', url: this.remote.url } } : undefined;
  }

  /** A node another runner holds the remote lease of is waited for, never submitted twice. */
  private async waitForOtherRunner(id: string, key: string): Promise<NodeOutcome | undefined> {
    const since = Date.now();
    for (let announced = false; ; ) {
      const holder = await this.remote.holder(key);
      if (!holder || !live(holder)) return undefined;
      if (leaseIsStale(this.remote, key, holder, since, expectedDurationMs(this.rc.store, this.name, id))) return undefined;
      const by = `computed by ${holder.host} pid ${holder.pid} (remote lease)`;
      if (this.opts.detach) return { state: 'would-run', key, reason: { why: 'leased-elsewhere', host: holder.host, pid: holder.pid } };
      if (!announced) this.show(id, 'waiting', by);
      announced = true;
      await sleep(Math.min(this.pollMs, 1000), this.options.signal);
      if (this.options.signal.aborted) return { state: 'interrupted', key };
      const done = await this.remote.peek(key);
      if (done) return { state: 'cached', key, manifest: done, reason: { why: 'computed-elsewhere', via: 'lease' } };
    }
  }

  // ---- following -----------------------------------------------------------------------------

  private jobsInFlight(): [string, JobPlan][] {
    return this.order.flatMap((id): [string, JobPlan][] => {
      const p = this.settled.get(id);
      return p?.type === 'job' && !this.finals.has(id) ? [[id, p]] : [];
    });
  }

  private async follow(planned: Promise<Plan[]>): Promise<void> {
    const { signal } = this.options;
    let planning = true;
    void planned.then(() => (planning = false));
    while (this.finals.size < this.order.length) {
      await sleep(this.pollMs, signal);
      if (signal.aborted) break;
      const inFlight = this.jobsInFlight();
      if (inFlight.length === 0) {
        if (!planning) break;
        continue;
      }
      let states: Map<string, JobInfo>;
      try {
        states = await this.system.states(inFlight.map(([, p]) => p.job));
      } catch (err) {
        this.note(`warning: ${(err as Error).message}`);
        continue;
      }
      // Parents first, so a finished parent's result is there when its child's key is computed.
      for (const [id, plan] of inFlight) if (!this.finals.has(id)) await this.observe(id, plan, states.get(plan.job));
    }
    if (signal.aborted) await this.interrupted(planned);
  }

  private async observe(id: string, plan: JobPlan, info: JobInfo | undefined): Promise<void> {
    const tag = `${this.system.name} job ${plan.job}`;
    if (!info) {
      // Forgotten by squeue (MinJobAge) and no sacct: the remote says whether it delivered.
      const misses = (this.missing.get(id) ?? 0) + 1;
      this.missing.set(id, misses);
      if (misses >= 3) await this.completed(id, plan, `${tag} left the queue and its state is unknown (no accounting)`);
      return;
    }
    if (info.state === 'PENDING') this.show(id, 'waiting', `${tag} PENDING${info.reason ? ` (${info.reason})` : ''}`);
    else if (info.state === 'RUNNING') this.show(id, 'running', `${tag} ${info.raw}${info.nodes ? ` on ${info.nodes}` : ''}`);
    else if (info.state === 'COMPLETED') await this.completed(id, plan, `${tag} COMPLETED without a result on ${this.remote.url}`);
    else if (isFinal(info.state)) await this.failed(id, plan, info);
  }

  /** Resolves the node's key now that its parents are done and reads the result from the remote. */
  private async completed(id: string, plan: JobPlan, otherwise: string): Promise<void> {
    const log = relative(this.rc.store.dir, plan.log);
    let key = plan.key;
    if (key && plan.material) await this.rc.store.remember(this.name, id, { key, material: plan.material });
    if (!key) {
      const parents = this.rc.dag.graph.inNeighbors(id);
      const notDone = parents.find((p) => !this.finals.get(p)?.manifest);
      if (notDone) {
        this.final(id, { state: 'failed', reason: error(`${otherwise} (upstream ${notDone} has no result)`), log });
        return;
      }
      const resolved = await resolveKey(this.rc, this.rc.pipeline.nodes.get(id)!, (p) => this.finals.get(p)!.manifest!);
      key = resolved.key;
      await this.rc.store.remember(this.name, id, resolved);
    }
    const manifest: Manifest | undefined = this.rc.store.manifest(key) ?? (await this.remote.peek(key));
    delete this.ledger[id];
    if (!manifest) {
      this.final(id, { state: 'failed', key, reason: error(otherwise), log });
      return;
    }
    // A job that found the result already there (another runner) did not compute it.
    const fresh = Date.parse(manifest.provenance.started) >= plan.submittedAt - 5000;
    const job = { system: this.system.name, job: plan.job };
    this.final(id, fresh ? { state: 'ran', key, manifest, reason: { why: 'batch-job', ...job }, log } : { state: 'cached', key, manifest, reason: { why: 'found-by-job', ...job } });
  }

  /** A failed or cancelled job: its queued descendants are cancelled; other branches go on. */
  private async failed(id: string, plan: JobPlan, info: JobInfo): Promise<void> {
    delete this.ledger[id];
    const upstream = this.rc.dag.graph.inNeighbors(id).find((p) => ['failed', 'skipped'].includes(this.finals.get(p)?.state ?? ''));
    if (upstream) {
      this.final(id, { state: 'skipped', reason: { why: 'upstream-stopped', upstream, detail: `did not finish (${this.system.name} job ${plan.job} ${info.raw})` } });
      return;
    }
    const detail = [info.exitCode && info.exitCode !== '0:0' ? `exit ${info.exitCode}` : '', info.reason ?? ''].filter(Boolean).join(', ');
    this.final(id, {
      state: 'failed',
      ...(plan.key ? { key: plan.key } : {}),
      reason: { why: 'batch-failed', system: this.system.name, job: plan.job, state: info.raw, ...(detail ? { detail } : {}) },
      log: relative(this.rc.store.dir, plan.log),
    });
    const below = descendantsOf(this.rc.dag.graph, id);
    const doomed = this.jobsInFlight().filter(([d]) => below.has(d));
    await this.system.cancel(doomed.map(([, p]) => p.job)).catch((err: unknown) => this.note(`warning: ${(err as Error).message}`));
    for (const [d, p] of doomed) {
      delete this.ledger[d];
      this.final(d, { state: 'skipped', reason: { why: 'upstream-stopped', upstream: id, detail: `failed: ${this.system.name} job ${p.job} cancelled` } });
    }
  }

  /** Ctrl-C: nothing more is submitted; the queued jobs are cancelled or left, as the user says. */
  private async interrupted(planned: Promise<Plan[]>): Promise<void> {
    await planned;
    const inFlight = this.jobsInFlight();
    const ids = inFlight.map(([, p]) => p.job);
    const cancel = ids.length > 0 && this.opts.confirmCancel ? await this.opts.confirmCancel(ids) : false;
    if (cancel) await this.system.cancel(ids).catch((err: unknown) => this.note(`warning: ${(err as Error).message}`));
    for (const [id, p] of inFlight) {
      if (cancel) delete this.ledger[id];
      this.final(id, { state: 'interrupted', reason: { why: 'batch-interrupted', system: this.system.name, job: p.job, cancelled: cancel, stopHint: this.system.stopHint(p.job) } });
    }
    for (const id of this.order) if (!this.finals.has(id)) this.final(id, { state: 'interrupted' });
  }
}
