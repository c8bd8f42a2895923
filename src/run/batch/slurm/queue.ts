// The SLURM command-line tools (sbatch, squeue, sacct, scontrol, scancel) and parsers for what
// they print. The parsers are pure; the commands are the only I/O.
import { execFile, spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import type { JobInfo, JobState } from '../system.js';

const ACTIVE = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED', 'RESV_DEL_HOLD']);

/** SLURM's many job states folded into the five a user acts on. */
export function foldState(raw: string): JobState {
  const s = raw.trim().split(/\s+/)[0]!.replace(/\+$/, '').toUpperCase();
  if (s === 'PENDING' || s === 'REQUEUED' || s === 'REQUEUE_HOLD' || s === 'REQUEUE_FED' || s === 'RESV_DEL_HOLD') return 'PENDING';
  if (ACTIVE.has(s)) return 'RUNNING';
  if (s === 'COMPLETED') return 'COMPLETED';
  if (s === 'CANCELLED' || s === 'REVOKED' || s === 'DEADLINE') return 'CANCELLED';
  if (['FAILED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'BOOT_FAIL', 'PREEMPTED', 'SPECIAL_EXIT'].includes(s)) return 'FAILED';
  return 'UNKNOWN';
}

/** `squeue -h -o '%i|%T|%r|%N'` lines. */
export const SQUEUE_FORMAT = '%i|%T|%r|%N';

export function parseSqueue(text: string): Map<string, JobInfo> {
  const out = new Map<string, JobInfo>();
  for (const line of text.split('\n')) {
    const [id, raw, reason, nodes] = line.trim().split('|');
    if (!id || !raw || !/^\d+(_\d+)?$/.test(id)) continue;
    const info: JobInfo = { id, raw, state: foldState(raw) };
    if (reason && reason !== 'None' && reason !== '(null)') info.reason = reason;
    if (nodes) info.nodes = nodes;
    out.set(id, info);
  }
  return out;
}

/**
 * `sacct -n -P -X -o JobID,State,ExitCode,Reason` lines. Without slurmdbd sacct prints "Slurm
 * accounting storage is disabled" and exits 0: lines that are not job rows are skipped.
 */
export function parseSacct(text: string): Map<string, JobInfo> {
  const out = new Map<string, JobInfo>();
  for (const line of text.split('\n')) {
    const [id, raw, exitCode, reason] = line.trim().split('|');
    if (!id || !raw || !/^\d+(_\d+)?$/.test(id)) continue;
    const info: JobInfo = { id, raw: raw.split(' ')[0]!, state: foldState(raw) };
    if (exitCode) info.exitCode = exitCode;
    if (reason && reason !== 'None') info.reason = reason;
    out.set(id, info);
  }
  return out;
}

/** `scontrol show job -o <id>`: one line of Key=Value pairs (values may not contain spaces). */
export function parseScontrol(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const token of text.trim().split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) out[token.slice(0, eq)] = token.slice(eq + 1);
  }
  return out;
}

/** `sbatch --parsable` prints "<id>" or "<id>;<cluster>". */
export function parseSbatch(text: string): string {
  const id = text.trim().split('\n').at(-1)?.split(';')[0]?.trim();
  if (!id || !/^\d+$/.test(id)) throw new Error(`sbatch printed no job id: ${JSON.stringify(text.trim())}`);
  return id;
}

/** The operations the executor needs; tests of the driver can substitute them. */
export interface Queue {
  submit(args: string[], script: string): Promise<string>;
  /** What SLURM says about these jobs; a job it has forgotten is absent from the map. */
  states(ids: string[]): Promise<Map<string, JobInfo>>;
  cancel(ids: string[]): Promise<void>;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** The real tools, from $PATH. */
export class SlurmQueue implements Queue {
  private readonly user = userInfo().username;

  submit(args: string[], script: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn('sbatch', args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('error', (err) => reject(new Error(`cannot run sbatch: ${err.message} (is SLURM installed on this host?)`)));
      child.on('close', (code) => {
        if (code !== 0) reject(new Error(`sbatch failed: ${stderr.trim() || `exit ${code}`}`));
        else {
          try {
            resolve(parseSbatch(stdout));
          } catch (err) {
            reject(err as Error);
          }
        }
      });
      child.stdin.end(script);
    });
  }

  async states(ids: string[]): Promise<Map<string, JobInfo>> {
    if (ids.length === 0) return new Map();
    // All of this user's jobs, filtered here: `squeue -j` fails outright when one id is unknown.
    const found = parseSqueue(await run('squeue', ['-h', '--states=all', '-u', this.user, '-o', SQUEUE_FORMAT]));
    const wanted = new Map([...found].filter(([id]) => ids.includes(id)));
    // Exit codes for failures, and the jobs squeue has forgotten (older than MinJobAge).
    const ask = ids.filter((id) => !wanted.has(id) || wanted.get(id)!.state === 'FAILED');
    if (ask.length > 0) {
      const acct = await run('sacct', ['-n', '-P', '-X', '-j', ask.join(','), '-o', 'JobID,State,ExitCode,Reason']).catch(() => '');
      for (const [id, info] of parseSacct(acct)) wanted.set(id, { ...wanted.get(id), ...info, reason: wanted.get(id)?.reason ?? info.reason });
      for (const id of ask) {
        const known = wanted.get(id);
        if (!known || known.exitCode) continue;
        const shown = parseScontrol(await run('scontrol', ['show', 'job', '-o', id]).catch(() => ''));
        if (shown['ExitCode']) known.exitCode = shown['ExitCode'];
      }
    }
    return wanted;
  }

  async cancel(ids: string[]): Promise<void> {
    if (ids.length > 0) await run('scancel', ids);
  }
}
