// Collects the files a synthetic generator writes, with their digests, for the stage's output.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export class DatasetWriter {
  readonly files = new Map<string, string>();

  constructor(readonly root: string) {}

  async write(rel: string, bytes: Uint8Array | string): Promise<void> {
    const abs = path.join(this.root, rel);
    await fs.mkdir(path.dirname(abs), { recursive: true });
    await fs.writeFile(abs, bytes);
    this.files.set(rel, createHash('sha256').update(bytes).digest('hex'));
  }

  /** Relative path -> sha256, sorted by path. */
  listing(): Record<string, string> {
    return Object.fromEntries([...this.files].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  }
}

export interface SyntheticOptions {
  count: number;
  size: number;
  seed: number;
}

/** CSV with minimal quoting (fields with commas, quotes or newlines). */
export function csvText(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cell = (v: string | number): string => {
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header, ...rows].map((r) => r.map(cell).join(',')).join('\n') + '\n';
}
