import type { Readable } from 'node:stream';

/** Thrown by `write` when the content exceeds the limit; nothing is left behind. */
export class ContentTooLarge extends Error {}

export interface WrittenContent {
  length: number;
  /** hex md5 of the bytes, as IMKIT's File object carries it. */
  md5: string;
}

/**
 * Where uploaded bytes live. Keys are `<app>/<bucket>/<file id>`, each part already checked to
 * be a plain name. The local-directory implementation is the default; an S3-compatible one
 * can implement the same four methods.
 */
export interface FileStorage {
  /** Streams `content` in; the key becomes visible only once complete (no partial files). */
  write(key: string, content: Readable, maxBytes: number): Promise<WrittenContent>;
  /** undefined when there is no such content. */
  read(key: string): Promise<Readable | undefined>;
  delete(key: string): Promise<void>;
}
