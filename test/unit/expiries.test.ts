import { describe, expect, it } from 'vitest';
import { type Expiring, ExpiryQueue } from '../../src/realtime/expiries.js';

interface Entry extends Expiring {
  n: number;
}
const entry = (n: number, expiresAt: number): Entry => ({ n, expiresAt, expiryIndex: -1 });

describe('ExpiryQueue (token expiries of idle sockets on one timer)', () => {
  it('expires what is due in deadline order, never what was removed, re-queues a moved deadline', async () => {
    let now = 0;
    const fired: Entry[] = [];
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const expected = 700;
    const queue = new ExpiryQueue<Entry>((e) => {
      fired.push(e);
      if (fired.length === expected) done();
    }, () => now);
    const entries = Array.from({ length: 1000 }, (_, n) => entry(n, 1 + ((n * 7919) % 997)));
    for (const e of entries) queue.add(e);
    const removed = new Set(entries.filter((e) => e.n % 10 < 3));
    for (const e of removed) queue.remove(e);
    queue.remove(entries[0]!); // twice: a no-op
    const moved = entries[5]!;
    moved.expiresAt = 5000; // later than `now` below: stays queued
    queue.add(moved);
    expect(queue.size).toBe(expected);
    now = 2000; // the timer (aimed at the earliest, 1 ms away) finds all but `moved` due
    moved.expiresAt = 1999;
    queue.remove(moved);
    queue.add(moved);
    await all;
    expect(queue.size).toBe(0);
    expect(fired.some((e) => removed.has(e))).toBe(false);
    const times = fired.map((e) => e.expiresAt);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(fired.every((e) => e.expiryIndex === -1)).toBe(true);
  });

  it('an entry added later with an earlier deadline re-aims the timer', async () => {
    const start = Date.now();
    const queue = new ExpiryQueue<Entry>((e) => fired(e));
    let fired!: (e: Entry) => void;
    const first = new Promise<Entry>((resolve) => (fired = resolve));
    queue.add(entry(1, start + 60_000));
    queue.add(entry(2, start + 5));
    expect((await first).n).toBe(2);
    queue.stop();
  });
});
