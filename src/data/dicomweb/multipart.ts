// The first part of a multipart/related body (RFC 2387), as WADO-RS sends one instance; a
// plain application/dicom answer passes through. No package parses multipart/related for
// Node (busboy and the like read multipart/form-data only), and one part is a few lines.

export function firstPart(body: Uint8Array, contentType: string): Uint8Array {
  if (/^application\/dicom\b/i.test(contentType)) return body;
  if (!/^multipart\/related\b/i.test(contentType)) throw new Error(`expected multipart/related or application/dicom, got ${JSON.stringify(contentType)}`);
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new Error(`multipart/related without a boundary: ${JSON.stringify(contentType)}`);
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`);
  const start = buf.indexOf(delimiter);
  if (start < 0) throw new Error('multipart body has no part');
  const headersEnd = buf.indexOf('\r\n\r\n', start + delimiter.length);
  if (headersEnd < 0) throw new Error('multipart part has no header end');
  const content = headersEnd + 4;
  const end = buf.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), content);
  if (end < 0) throw new Error('multipart part is not closed (truncated answer?)');
  return body.subarray(content, end);
}
