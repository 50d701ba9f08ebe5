import { crc32, deflateSync } from 'node:zlib';

/**
 * A plain dark-grey PNG with a video's aspect ratio (long side 320 px), standing in for a
 * thumbnail: roomcast reads a video's container but has no decoder to take a frame from it.
 */
export function placeholderPng(width: number, height: number): Buffer {
  const scale = 320 / Math.max(width, height, 1);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const row = Buffer.alloc(w * 3 + 1, 0x30);
  row[0] = 0; // filter: none
  return encodeRgbPng(w, h, Buffer.concat(Array.from({ length: h }, () => row)));
}

/** A PNG of 8-bit RGB rows as given (`raw`: each row a filter byte, then width × 3 bytes). */
export function encodeRgbPng(width: number, height: number, raw: Buffer): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}
