import type { Readable } from 'node:stream';

/** What a video's container says about it, without decoding a frame. */
export interface VideoInfo {
  width: number;
  height: number;
  /** Seconds, as an HTML video element reports it. */
  duration: number;
}

/** A `moov` box larger than this is not read (a real one is a few hundred KB even for hours of video). */
const MAX_MOOV = 32 * 1024 * 1024;

/**
 * Width, height (as displayed: a 90°-rotated track is swapped) and duration of an ISO-BMFF
 * video (MP4, MOV, 3GP, M4V) read from its `moov` box, wherever it sits in the file: the
 * stream is walked box by box and only `moov` is buffered. undefined for anything else
 * (WebM, AVI, …) or a file without a video track. Reads the whole stream at most once.
 */
export async function probeVideo(content: Readable): Promise<VideoInfo | undefined> {
  const reader = new ByteReader(content);
  try {
    for (;;) {
      const header = await reader.read(8);
      if (!header) return undefined;
      let size = header.readUInt32BE(0);
      const type = header.toString('latin1', 4, 8);
      let headerLength = 8;
      if (size === 1) {
        const large = await reader.read(8);
        if (!large) return undefined;
        size = Number(large.readBigUInt64BE(0));
        headerLength = 16;
      }
      if (type === 'moov') {
        if (size === 0 || size - headerLength > MAX_MOOV) return undefined;
        const body = await reader.read(size - headerLength);
        return body ? parseMoov(body) : undefined;
      }
      if (size === 0) return undefined; // the last box runs to the end of the file: no moov after it
      if (size < headerLength || !(await reader.skip(size - headerLength))) return undefined;
    }
  } finally {
    content.destroy();
  }
}

/** Children of a box body: [type, body] in order; stops at the first malformed header. */
function* boxes(buf: Buffer): Generator<[string, Buffer]> {
  let at = 0;
  while (at + 8 <= buf.length) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let header = 8;
    if (size === 1) {
      if (at + 16 > buf.length) return;
      size = Number(buf.readBigUInt64BE(at + 8));
      header = 16;
    } else if (size === 0) {
      size = buf.length - at;
    }
    if (size < header || at + size > buf.length) return;
    yield [type, buf.subarray(at + header, at + size)];
    at += size;
  }
}

function parseMoov(moov: Buffer): VideoInfo | undefined {
  let duration: number | undefined;
  let dims: { width: number; height: number } | undefined;
  for (const [type, body] of boxes(moov)) {
    if (type === 'mvhd') duration = movieDuration(body);
    if (type === 'trak' && !dims) {
      for (const [child, tkhd] of boxes(body)) if (child === 'tkhd') dims = trackSize(tkhd);
    }
  }
  if (!dims || duration === undefined) return undefined;
  return { ...dims, duration };
}

/** mvhd: timescale and duration (32-bit in version 0, 64-bit in version 1). */
function movieDuration(b: Buffer): number | undefined {
  const version = b[0];
  const [scaleAt, durationAt, long] = version === 1 ? [20, 24, true] : [12, 16, false];
  if (b.length < durationAt + (long ? 8 : 4)) return undefined;
  const timescale = b.readUInt32BE(scaleAt);
  const units = long ? Number(b.readBigUInt64BE(durationAt)) : b.readUInt32BE(durationAt);
  return timescale > 0 ? Math.round((units / timescale) * 1000) / 1000 : undefined;
}

/** tkhd: the track's presentation size (16.16 fixed point), swapped when its matrix turns it by 90°; undefined for a track without one (audio). */
function trackSize(b: Buffer): { width: number; height: number } | undefined {
  const matrixAt = b[0] === 1 ? 52 : 40;
  const sizeAt = matrixAt + 36;
  if (b.length < sizeAt + 8) return undefined;
  const width = Math.round(b.readUInt32BE(sizeAt) / 65536);
  const height = Math.round(b.readUInt32BE(sizeAt + 4) / 65536);
  if (width === 0 || height === 0) return undefined;
  const a = b.readInt32BE(matrixAt);
  const d = b.readInt32BE(matrixAt + 16);
  return a === 0 && d === 0 ? { width: height, height: width } : { width, height };
}

/** Exact-length reads and skips over a stream, holding only what a read asked for. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private iterator: AsyncIterator<Buffer>;
  private done = false;

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** The next `n` bytes, or undefined when the stream ends first. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n) if (!(await this.pull())) return undefined;
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.buffered = all.length - n;
    return all.subarray(0, n);
  }

  /** Drops the next `n` bytes; false when the stream ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    for (;;) {
      if (this.buffered >= left) {
        const all = Buffer.concat(this.chunks);
        this.chunks = [all.subarray(left)];
        this.buffered = all.length - left;
        return true;
      }
      left -= this.buffered;
      this.chunks = [];
      this.buffered = 0;
      if (!(await this.pull())) return false;
    }
  }

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    return true;
  }
}
