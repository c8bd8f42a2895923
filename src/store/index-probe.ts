import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IndexDamagedError } from './index-file.js';

/**
 * Reading a damaged LMDB page can fault (SIGBUS, SIGSEGV) instead of failing: no JavaScript
 * catches that, so whatever must survive such a read (verify, repair, the report after a
 * crash) does it in a child process, where a fault is one more way of saying "damaged".
 */
const CHILD = fileURLToPath(new URL('./index-child.js', import.meta.url));

/**
 * The signals a read of a damaged memory-mapped page ends in: SIGBUS or SIGSEGV from the fault
 * itself, SIGABRT from LMDB's own assertion on a page it finds inconsistent. Native code of any
 * other kind (a kernel, V8 out of memory) ends in these too: only a read-through of the index in
 * a child (probeIndex) tells the two apart. bin/pipeline's list (ABRT | BUS | SEGV) is this one.
 */
export function isFaultSignal(signal: string | null | undefined): boolean {
  return signal === 'SIGBUS' || signal === 'SIGSEGV' || signal === 'SIGABRT';
}

export interface ChildOutcome<T> {
  /** What the child printed as its answer (one JSON line), when it finished. */
  answer?: T;
  /** The signal that ended it: the read faulted. */
  signal?: string;
  stderr: string;
}

export function runIndexChild<T>(args: string[]): Promise<ChildOutcome<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      // Only a memory fault says "damaged page"; a child killed from outside (the OOM killer,
      // Ctrl-C, TERM) says nothing about the index and must not send repair moving it aside.
      if (isFaultSignal(signal)) return resolve({ signal: signal!, stderr });
      if (signal) return reject(new Error(`the cache index check was killed by ${signal} before it finished (not a sign of damage): run it again`));
      const line = stdout.trim().split('\n').pop();
      try {
        resolve({ answer: JSON.parse(line ?? '') as T, stderr });
      } catch {
        reject(new Error(`the cache index check exited with code ${code} without an answer: ${stderr.trim().split('\n').slice(-3).join(' ')}`));
      }
    });
  });
}

/** How a fault while reading the index is said, wherever it is met. */
export function faultProblem(signal: string): string {
  return `reading it crashed the process (${signal}): LMDB followed a damaged page`;
}

/** Reads every table of DIR's index in a child: undefined when it reads whole, else what is wrong. */
export async function probeIndex(dir: string): Promise<string | undefined> {
  const out = await runIndexChild<{ ok: true } | { problem: string } | { error: string }>(['probe', dir]);
  if (out.signal) return faultProblem(out.signal);
  const answer = out.answer!;
  if ('error' in answer) throw new Error(answer.error);
  return 'problem' in answer ? answer.problem : undefined;
}

/** Throws IndexDamagedError, naming the index and the repair, when DIR's index does not read whole. */
export async function assertIndexReadable(dir: string): Promise<void> {
  const problem = await probeIndex(dir);
  if (problem !== undefined) throw new IndexDamagedError(join(dir, 'index.lmdb'), problem);
}
