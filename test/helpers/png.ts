import { encodeRgbPng } from '../../src/files/placeholder.js';

/** A real PNG (RGB gradient with noise, so it does not compress to nothing), built byte by byte. */
export function makePng(width: number, height: number, seed = 1): Buffer {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let x = seed;
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let i = 0; i < width; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      raw[row + 1 + i * 3] = (i * 255) / width;
      raw[row + 2 + i * 3] = (y * 255) / height;
      raw[row + 3 + i * 3] = x & 0xff;
    }
  }
  return encodeRgbPng(width, height, raw);
}
