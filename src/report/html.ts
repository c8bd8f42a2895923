// Escaping for text and attribute values placed in HTML and SVG markup.

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** A PNG as a data URI, so the page is one self-contained file. */
export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64')}`;
}

/** The id of a node's row in the report's provenance table, for links from the sections above. */
export function anchorOf(node: string): string {
  return `node-${node.replace(/[^A-Za-z0-9_-]+/g, '-')}`;
}
