// What every frame decoder takes and gives back.

/** What the data set says the frame is; a decoder whose output disagrees is an error. */
export interface FrameSpec {
  rows: number;
  columns: number;
  bitsAllocated: number;
  signed: boolean;
}

/** One sample per pixel, row-major: the stored values, before BitsStored masking. */
export type Samples = Uint8Array | Uint16Array | Int16Array;

/** A frame the codec could not decode; the caller adds the file name. */
export class CodecError extends Error {}
