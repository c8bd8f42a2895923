// Raster -> PNG / JPEG bytes via sharp (loaded lazily, as everywhere in medpipe).
import { loadSharp } from '../decode.js';
import type { Raster } from './raster.js';

export async function encodeImage(raster: Raster, format: 'png' | 'jpeg', quality = 92): Promise<Buffer> {
  const sharp = await loadSharp();
  const channels = raster.channels as 1 | 3;
  const image = sharp(Buffer.from(raster.toUint8()), { raw: { width: raster.width, height: raster.height, channels } });
  // Deterministic output: no metadata, fixed encoder settings.
  return format === 'png' ? image.png({ compressionLevel: 6 }).toBuffer() : image.jpeg({ quality, chromaSubsampling: '4:2:0' }).toBuffer();
}
