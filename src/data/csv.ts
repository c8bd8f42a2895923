// CSV reading for importers: every bad row becomes a problem naming file and line, and reading
// goes on; only a broken quote (after which nothing can be trusted) ends a file early.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Problem } from './importers/types.js';

export interface CsvRow {
  /** 1-based line on which the record ends (its only line for ordinary rows). */
  line: number;
  /** Field values by (trimmed) header name. */
  get(column: string): string;
}

export interface CsvTable {
  header: string[];
  rows: CsvRow[];
  problems: Problem[];
  /** False when the file could not be read at all. */
  found: boolean;
}

interface ParsedRecord {
  record: string[];
  info: { lines: number };
}

/**
 * Reads root/rel as CSV with a header row. Columns are matched after trimming and, failing an
 * exact match, case-insensitively (CBIS-DDSM's CSVs disagree on `breast_density` spellings).
 * Rows whose field count differs from the header's are reported and dropped.
 */
export async function readCsv(root: string, rel: string, required: readonly string[]): Promise<CsvTable> {
  const { parse } = await import('csv-parse/sync');
  const problems: Problem[] = [];
  let text: Buffer;
  try {
    text = await fs.readFile(path.join(root, rel));
  } catch (e) {
    return { header: [], rows: [], problems: [{ file: rel, reason: `cannot read: ${(e as Error).message}` }], found: false };
  }
  const parsed = parse(text, {
    info: true,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (err) => {
      const at = err && typeof err['lines'] === 'number' ? (err['lines'] as number) : undefined;
      problems.push({ file: rel, line: at, reason: `unreadable CSV: ${err?.message ?? 'unknown error'}` });
      return undefined;
    },
  }) as unknown as ParsedRecord[];
  if (parsed.length === 0) {
    problems.push({ file: rel, line: 1, reason: 'empty CSV (no header row)' });
    return { header: [], rows: [], problems, found: true };
  }
  const header = parsed[0].record.map((h) => h.trim());
  const position = new Map<string, number>();
  header.forEach((h, i) => {
    if (!position.has(h)) position.set(h, i);
    const lower = `\u0000${h.toLowerCase()}`;
    if (!position.has(lower)) position.set(lower, i);
  });
  const columnIndex = (c: string): number | undefined => position.get(c) ?? position.get(`\u0000${c.toLowerCase()}`);
  const missing = required.filter((c) => columnIndex(c) === undefined);
  if (missing.length > 0) {
    problems.push({
      file: rel,
      line: parsed[0].info.lines,
      reason: `missing column(s) ${missing.map((m) => JSON.stringify(m)).join(', ')}; header is ${JSON.stringify(header)}`,
    });
    return { header, rows: [], problems, found: true };
  }
  const rows: CsvRow[] = [];
  for (const { record, info } of parsed.slice(1)) {
    if (record.length !== header.length) {
      problems.push({ file: rel, line: info.lines, reason: `expected ${header.length} fields, found ${record.length}` });
      continue;
    }
    rows.push({
      line: info.lines,
      get: (column) => {
        const i = columnIndex(column);
        return i === undefined ? '' : (record[i] ?? '').trim();
      },
    });
  }
  return { header, rows, problems, found: true };
}
