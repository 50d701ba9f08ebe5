import { describe, expect, it } from 'vitest';
import { newId, newMessageId } from '../../src/core/secrets.js';

describe('ids', () => {
  it('newId: 24 hex characters, all random', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newId()));
    expect(ids.size).toBe(2000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{24}$/);
  });

  it('newMessageId: 24 hex characters that sort by creation time and differ within one millisecond', () => {
    const at = Date.parse('2026-12-01T05:00:00Z');
    const sameMs = Array.from({ length: 1000 }, () => newMessageId(at));
    expect(new Set(sameMs).size).toBe(1000);
    for (const id of sameMs) {
      expect(id).toMatch(/^[0-9a-f]{24}$/);
      expect(parseInt(id.slice(0, 12), 16)).toBe(at);
    }
    // Made later sorts later, whatever the random half (the store's id index is appended to).
    const later = Array.from({ length: 1000 }, (_, i) => newMessageId(at + 1 + i));
    const all = [...sameMs, ...later];
    expect(all.every((id, i) => i < 1000 || id > all[i - 1]!)).toBe(true);
    for (const id of later) expect(id > sameMs.reduce((a, b) => (a > b ? a : b))).toBe(true);
  });

  it('ids drawn in turn from the shared pool keep their lengths across pool refills', () => {
    // 12 + 6 bytes per round: refills fall at every offset, never cutting an id short.
    for (let i = 0; i < 3000; i++) {
      expect(newId()).toHaveLength(24);
      expect(newMessageId()).toHaveLength(24);
    }
  });
});
