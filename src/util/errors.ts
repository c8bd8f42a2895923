/** Where a value came from: a YAML file position, or a command-line override. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export function formatPos(pos: SourcePos | undefined): string {
  if (!pos) return '';
  return pos.line > 0 ? `${pos.file}:${pos.line}:${pos.col}` : pos.file;
}

/** A problem in a pipeline file or override, located at its source and named by its field. */
export class ConfigError extends Error {
  constructor(
    readonly problem: string,
    readonly pos?: SourcePos,
    readonly field?: string,
  ) {
    super(`${pos ? formatPos(pos) + ': ' : ''}${field ? `${field}: ` : ''}${problem}`);
    this.name = 'ConfigError';
  }
}

/** Several problems found in one pass, reported together so a user fixes them all at once. */
export class ConfigErrors extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'ConfigErrors';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
