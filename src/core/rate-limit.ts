import { createHash } from 'node:crypto';

/**
 * Fixed-window counters: `hit(key, amount)` is false once a key's total passes `limit` in the
 * current window. The whole table is dropped when a window ends, so memory stays bounded
 * by the keys of one window and no timer is needed. Long keys (client keys, which anyone can
 * make arbitrarily large) are kept as a 16-byte digest, never as the caller's string.
 */
export class WindowCounter {
  private counts = new Map<string, number>();
  private windowStart = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  hit(key: string, amount = 1): boolean {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.counts.clear();
      this.windowStart = now;
    }
    const k = key.length > 32 ? createHash('sha256').update(key).digest('base64url').slice(0, 22) : key;
    const count = (this.counts.get(k) ?? 0) + amount;
    this.counts.set(k, count);
    return count <= this.limit;
  }

  /** How many keys the current window holds (tests: the table stays small). */
  get size(): number {
    return this.counts.size;
  }

  /** The keys as held (tests: never a caller's long string). */
  keys(): IterableIterator<string> {
    return this.counts.keys();
  }
}
