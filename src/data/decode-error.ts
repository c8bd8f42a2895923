// The one error every image decoder throws: it names the file, so a run can list all bad files
// at once.
export class DecodeError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'DecodeError';
  }
}

/** The text of anything thrown, including dicom-parser's non-Error objects. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  // dicom-parser throws { exception: string, dataSet } rather than Errors.
  if (typeof e === 'object' && e !== null && 'exception' in e) return String((e as { exception: unknown }).exception);
  return String(e);
}
