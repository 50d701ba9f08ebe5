import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../src/delivery/outbox.js';

describe('outbox retry backoff', () => {
  it('doubles per attempt up to the cap, jittered within the upper half', () => {
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffMs(4, 1000, 60_000, () => 0)).toBe(4000);
    expect(backoffMs(30, 1000, 60_000, () => 1)).toBe(60_000);
    expect(backoffMs(1000, 1000, 60_000, () => 0.5)).toBe(45_000);
  });
  it('spreads items that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffMs(3, 1000, 60_000)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(2000);
  });
});
