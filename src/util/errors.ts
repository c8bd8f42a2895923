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

const FS_PROBLEMS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a folder, not a file',
  ENOTDIR: 'a part of its path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'too many symbolic links',
  EIO: 'I/O error',
};

/** A file system failure in words ("no such file"), for a message that already names the path. */
export function fsProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined ? (FS_PROBLEMS[code] ?? code) : errorMessage(err);
}
