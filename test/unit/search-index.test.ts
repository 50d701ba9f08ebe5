import { describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../src/core/models.js';
import { SearchIndex } from '../../src/core/search-index.js';

const msg = (id: string, room: string, message: unknown, extra?: unknown): MessageRecord => ({
  id, room, message, messageType: 'text', fields: extra ? { extra } : {}, createdAt: 1, updatedAt: 1,
});

describe('search index', () => {
  it('finds by grams, per room, newest first, and forgets edits and removals', () => {
    const index = new SearchIndex();
    index.add('A', msg('m1', 'r1', 'hello world'));
    index.add('A', msg('m2', 'r2', 'Hello there'));
    index.add('A', msg('m3', 'r1', 'file', { fileName: 'Report.PDF' }));
    index.add('B', msg('m9', 'r1', 'hello other app'));
    const ids = (kw: string, rooms: string[], limit = 10) => index.candidates('A', kw, new Set(rooms), limit).map((c) => c.id);
    expect(ids('hello', ['r1', 'r2'])).toEqual(['m2', 'm1']);
    expect(ids('HELLO', ['r1'])).toEqual(['m1']);
    expect(ids('report', ['r1'])).toEqual(['m3']);
    expect(ids('hello', ['r1', 'r2'], 1)).toEqual(['m2']);
    expect(ids('zebra', ['r1', 'r2'])).toEqual([]);
    index.add('A', msg('m1', 'r1', 'goodbye'));
    expect(ids('hello', ['r1'])).toEqual([]);
    expect(ids('goodbye', ['r1'])).toEqual(['m1']);
    index.remove('A', 'm1');
    expect(ids('goodbye', ['r1'])).toEqual([]);
    index.removeRoom('A', 'r2');
    expect(ids('there', ['r2'])).toEqual([]);
    expect(index.candidates('B', 'hello', new Set(['r1']), 10)).toEqual([{ id: 'm9', room: 'r1' }]);
  });

  it('keeps at most maxPerApp messages per application, forgetting the oldest indexed', () => {
    const index = new SearchIndex(3);
    for (const id of ['a', 'b', 'c', 'd']) index.add('A', msg(id, 'r', `word ${id}`));
    index.add('B', msg('z', 'r', 'word z'));
    const ids = index.candidates('A', 'word', new Set(['r']), 10).map((c) => c.id);
    expect(ids).toEqual(['d', 'c', 'b']);
    expect(index.candidates('B', 'word', new Set(['r']), 10).map((c) => c.id)).toEqual(['z']);
  });
});
