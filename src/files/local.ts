import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentTooLarge, type FileStorage, type WrittenContent } from './storage.js';

/**
 * Files in a local directory. Content is written to a temporary name and renamed into place
 * when complete, so a failed or oversized upload never leaves a partial file at its key.
 * Several nodes need this directory shared until an object-store implementation exists.
 */
export class LocalFileStorage implements FileStorage {
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private pathOf(key: string): string {
    const full = path.resolve(this.root, key);
    // Keys are validated upstream; this is the last guard against leaving the root.
    if (!full.startsWith(this.root + path.sep)) throw new Error(`storage key escapes the root: ${key}`);
    return full;
  }

  async write(key: string, content: Readable, maxBytes: number): Promise<WrittenContent> {
    const final = this.pathOf(key);
    await mkdir(path.dirname(final), { recursive: true });
    const temp = `${final}.${randomBytes(6).toString('hex')}.part`;
    const md5 = createHash('md5');
    let length = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        length += chunk.length;
        if (length > maxBytes) return done(new ContentTooLarge(`content exceeds ${maxBytes} bytes`));
        md5.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(content, meter, createWriteStream(temp, { flags: 'wx' }));
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return { length, md5: md5.digest('hex') };
  }

  async read(key: string): Promise<Readable | undefined> {
    const file = this.pathOf(key);
    try {
      await stat(file);
    } catch {
      return undefined;
    }
    return createReadStream(file);
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}
