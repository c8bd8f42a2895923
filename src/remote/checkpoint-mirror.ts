// A running node's checkpoints copied to the remote (ckpt/<key>/<name>), so a run killed here
// resumes on another machine. Best effort throughout: the remote being down or slow costs at
// most a warning in the node's log and a resume from scratch elsewhere, never a failed node.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { RemoteStore } from './remote-store.js';
import { CACHE_KEY_ENV } from './sign.js';

const MAGIC = Buffer.from('medpipe-ckpt/1\n');
const MAC_BYTES = 32;
/** After a failed upload, later saves skip the remote this long instead of each waiting on it. */
const BACKOFF_MS = 60_000;

export class CheckpointMirror {
  private inFlight: Promise<void> = Promise.resolve();
  private retryAt = 0;
  /** Names this run saved or restored: the ones to drop once the node has committed. */
  private readonly names = new Set<string>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly remote: RemoteStore,
    private readonly key: string,
    private readonly log: (text: string) => void,
    private readonly teamKey: string | undefined = process.env[CACHE_KEY_ENV] || undefined,
  ) {}

  private warn(message: string): void {
    // A dead remote would otherwise say so at every step.
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.log(`warning: ${message}`);
  }

  /**
   * The HMAC binds the bytes to this node key and name under the team key, as manifests are:
   * whoever can write to the remote cannot feed a run state that ends in a signed result.
   * Without a key, a sha256 over the same: no defence against a hostile writer (the unsigned
   * remote warning says so), but a torn upload or a flipped byte is never resumed from.
   */
  private mac(name: string, data: Uint8Array): Buffer {
    const tag = this.teamKey ? createHmac('sha256', this.teamKey) : createHash('sha256');
    return tag.update(`${this.key}\n${name}\n`).update(data).digest();
  }

  private seal(name: string, data: Uint8Array): Uint8Array {
    return Buffer.concat([MAGIC, this.mac(name, data), data]);
  }

  private open(name: string, sealed: Uint8Array): Uint8Array | undefined {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (buf.length < MAGIC.length + MAC_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
    const data = buf.subarray(MAGIC.length + MAC_BYTES);
    const got = buf.subarray(MAGIC.length, MAGIC.length + MAC_BYTES);
    return timingSafeEqual(got, this.mac(name, data)) ? data : undefined;
  }

  /**
   * Starts uploading in the background and returns once the previous upload is done: at most
   * one in flight (memory stays bounded), and a run killed after save n still has n-1 remote.
   */
  async save(name: string, data: Uint8Array): Promise<void> {
    this.names.add(name);
    await this.inFlight;
    if (Date.now() < this.retryAt) return;
    const sealed = this.seal(name, data);
    this.inFlight = this.remote.putCheckpoint(this.key, name, sealed).catch((err: unknown) => {
      this.retryAt = Date.now() + BACKOFF_MS;
      this.warn(`could not upload checkpoint ${name} to ${this.remote.url} (the run goes on; it resumes from it only here): ${(err as Error).message}`);
    });
  }

  /** The remote copy, when the local one is missing (another machine's run of this key). */
  async restore(name: string): Promise<Uint8Array | undefined> {
    let sealed: Uint8Array | undefined;
    try {
      sealed = await this.remote.getCheckpoint(this.key, name);
    } catch (err) {
      this.warn(`could not read checkpoint ${name} from ${this.remote.url}, starting without it: ${(err as Error).message}`);
      return undefined;
    }
    if (!sealed) return undefined;
    const data = this.open(name, sealed);
    if (!data) {
      this.warn(`ignoring checkpoint ${name} on ${this.remote.url}: ${this.teamKey ? `not signed with this ${CACHE_KEY_ENV}` : `damaged, cut short or not a medpipe checkpoint (or signed with a team key this run lacks: ${CACHE_KEY_ENV})`}`);
      return undefined;
    }
    this.names.add(name);
    this.log(`resuming from checkpoint ${name} on ${this.remote.url}`);
    return data;
  }

  /** Waits for the last upload, so the process may exit (the node commits next). */
  settle(): Promise<void> {
    return this.inFlight;
  }

  /** After the commit: the result is what others will fetch, the run's state is garbage. */
  async drop(): Promise<void> {
    await this.inFlight;
    for (const name of this.names) await this.remote.dropCheckpoint(this.key, name).catch(() => undefined);
  }

  close(): Promise<void> {
    return this.remote.close();
  }
}
