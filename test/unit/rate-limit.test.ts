import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WindowCounter } from '../../src/core/rate-limit.js';

describe('WindowCounter (issue #11 item 16)', () => {
  it('keeps a short digest of long keys, never the caller\'s string, and still counts per key', () => {
    let now = 0;
    const counter = new WindowCounter(2, 60_000, () => now);
    const keys = Array.from({ length: 50 }, () => randomBytes(450_000).toString('hex')); // 0.9 MB each
    for (const key of keys) expect(counter.hit(key)).toBe(true);
    expect(counter.hit(keys[0]!)).toBe(true);
    expect(counter.hit(keys[0]!)).toBe(false);
    expect(counter.size).toBe(50);
    expect(Math.max(...[...counter.keys()].map((k) => k.length))).toBeLessThanOrEqual(32);
    now = 60_000; // a new window drops the table
    expect(counter.hit('x')).toBe(true);
    expect(counter.size).toBe(1);
  });
});
