// Formatting and JSON for import/decode problems.
import type { JSONObject } from '../contract.js';
import type { Problem } from './importers/types.js';

export function formatProblem(p: Problem): string {
  return p.line === undefined ? `${p.file}: ${p.reason}` : `${p.file} line ${p.line}: ${p.reason}`;
}

export function problemJson(p: Problem): JSONObject {
  return p.line === undefined ? { file: p.file, reason: p.reason } : { file: p.file, line: p.line, reason: p.reason };
}

/** A multi-line message listing every problem (never only the first), for a failing stage. */
export function problemsMessage(what: string, problems: readonly Problem[], hint: string): string {
  const lines = problems.map((p) => `  ${formatProblem(p)}`);
  return `${what}: ${problems.length} problem${problems.length === 1 ? '' : 's'} (${hint}):\n${lines.join('\n')}`;
}
