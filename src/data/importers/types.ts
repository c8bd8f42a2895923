// What every importer hands to the preprocess stage: a list of labelled image files in a
// deterministic order, the class names, and every problem found on the way (never only the first).
import type { SplitName } from '../split.js';

export interface Problem {
  /** Path relative to the data-set root (POSIX separators), so it can be shown and keyed. */
  file: string;
  /** 1-based line of the CSV / list file, when the problem comes from one. */
  line?: number;
  reason: string;
}

export interface ImportItem {
  /** Stable source id (e.g. APTOS id_code, ISIC image name), unique within the data set. */
  id: string;
  /** Image path relative to the data-set root, POSIX separators. */
  path: string;
  /** Index into ImportResult.classes. */
  label: number;
  /** A split the data set itself prescribes (CBIS-DDSM train/test, DDSM lists), if any. */
  split?: SplitName;
}

export interface ImportResult {
  items: ImportItem[];
  classes: string[];
  problems: Problem[];
  /** Index / label files read (relative to root): they are part of the data's fingerprint. */
  sources: string[];
}

export type ImportOptions = { [key: string]: unknown };

export interface Importer {
  format: string;
  description: string;
  /** Where a user gets the data and what the root directory must contain. */
  where: string;
  /** Files or directories (relative to root) that must exist for the importer to make sense. */
  required(options: ImportOptions): string[];
  import(root: string, options: ImportOptions): Promise<ImportResult>;
}

export class ImportOptionError extends Error {}

/** Reads a string option, with a default; a wrong type is an error naming the option. */
export function stringOption(options: ImportOptions, name: string, fallback: string): string {
  const v = options[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw new ImportOptionError(`option ${name} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

export function enumOption<T extends string>(options: ImportOptions, name: string, allowed: readonly T[], fallback: T): T {
  const v = stringOption(options, name, fallback);
  if (!(allowed as readonly string[]).includes(v)) {
    throw new ImportOptionError(`option ${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}
