import { hostname } from 'node:os';
import { kindCode } from '../code/kind-code.js';
import type { StageKind } from '../contract.js';
import { CheckpointMirror } from '../remote/checkpoint-mirror.js';
import { openRemote } from '../remote/open.js';
import { importKind } from '../registry.js';
import type { Manifest } from '../store/artifacts.js';
import type { Store } from '../store/store.js';
import { buildContext, type ContextHooks } from './context.js';
import type { Job } from './job.js';
import { packageVersions, repoState } from './versions.js';

/**
 * Runs one node's stage and publishes its manifest. Until the manifest is committed nothing
 * of the node is visible: a failure or a kill leaves only unreachable blobs for `cache gc`.
 */
export async function executeJob(job: Job, store: Store, hooks: ContextHooks): Promise<Manifest> {
  const kind = await importKind(job.kindModule, job.node.kind);
  if (job.material.code !== undefined) await assertPlannedCode(job, kind);
  const mirror = job.remote ? new CheckpointMirror(openRemote(job.remote), job.key, hooks.log) : undefined;
  try {
    return await runAndCommit(job, store, hooks, kind, mirror);
  } finally {
    await mirror?.close();
  }
}

/**
 * A kind keyed by its code must run the code its key was computed from. A worker that imports
 * the module after it was edited mid-run (a fresh worker: an isolated kind, one replaced after
 * a crash) would store the new code's result under the old code's key, where reverting the
 * edit would find it. kindCode digests the module once per process, as this process loaded it.
 */
async function assertPlannedCode(job: Job, kind: StageKind): Promise<void> {
  const loaded = (await kindCode({ module: job.kindModule, kind, builtin: false })).digest;
  if (loaded !== job.material.code) {
    throw new Error(`the code of kind ${kind.kind} changed after this run planned the node (keyed by code ${job.material.code!.slice(0, 12)}, this worker loaded ${loaded.slice(0, 12)}); nothing was stored: run again to compute it with the code as it is now`);
  }
}

async function runAndCommit(job: Job, store: Store, hooks: ContextHooks, kind: StageKind, mirror: CheckpointMirror | undefined): Promise<Manifest> {
  const started = new Date();
  const built = await buildContext(job, store, kind.outputs, hooks, mirror);
  try {
    await kind.run(built.ctx);
    // A stage that returns after Ctrl-C without having seen it finished its work: stored, not
    // lost. One that saw it may have stopped early and returned what it had: not stored.
    if (hooks.signal.aborted && built.noticedAbort()) throw new Error('interrupted');
    const missing = Object.keys(kind.outputs).filter((o) => !built.produced.has(o));
    if (missing.length > 0) throw new Error(`stage kind ${kind.kind} finished without writing output(s): ${missing.join(', ')}`);
  } finally {
    // Even on failure: a failed node's last checkpoint is what a retry elsewhere resumes from.
    await mirror?.settle();
    await built.cleanup();
  }
  const manifest: Manifest = {
    key: job.key,
    pipeline: job.pipeline,
    node: job.node.id,
    stage: job.node.stage,
    kind: job.node.kind,
    version: kind.version,
    material: job.material,
    outputs: Object.fromEntries(built.produced),
    provenance: {
      started: started.toISOString(),
      duration_s: (Date.now() - started.getTime()) / 1000,
      host: hostname(),
      pid: process.pid,
      log: job.log,
      versions: packageVersions(),
      repository: repoState(job.baseDir),
      reported: built.provenance,
      ...(job.code ? { code: job.code } : {}),
    },
    ...(built.report.text !== undefined ? { report: built.report.text } : {}),
  };
  const committed = job.replace ? await store.replace(manifest) : await store.commit(manifest);
  await store.dropCheckpoints(job.key);
  await mirror?.drop();
  return committed;
}
