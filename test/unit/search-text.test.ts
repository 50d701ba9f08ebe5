import { describe, expect, it } from 'vitest';
import type { MessageRecord } from '../../src/core/models.js';
import { keywordGrams, matchesKeyword, normalise, textGrams } from '../../src/core/search-text.js';

const msg = (message: unknown, extra?: unknown, messageType = 'text'): MessageRecord => ({
  id: 'm', room: 'r', message, messageType, fields: extra ? { extra } : {}, createdAt: 1, updatedAt: 1,
});

/** What the index promises: every keyword a text contains has all its grams among the text's. */
const narrowsTo = (text: string, keyword: string) => {
  const grams = new Set(textGrams(normalise(text)));
  return keywordGrams(normalise(keyword)).every((g) => grams.has(g));
};

describe('search text', () => {
  it('matches normalised substrings: case, width and whitespace do not matter; CJK of any length', () => {
    expect(matchesKeyword(msg('The Launch  plan'), normalise('launch PLAN'))).toBe(true);
    expect(matchesKeyword(msg('ＡＢＣ全角'), normalise('abc'))).toBe(true);
    expect(matchesKeyword(msg('明天開會討論設計'), normalise('設'))).toBe(true);
    expect(matchesKeyword(msg('明天開會討論設計'), normalise('設計'))).toBe(true);
    expect(matchesKeyword(msg('明天開會討論設計'), normalise('設會'))).toBe(false);
    expect(matchesKeyword(msg('file', { fileName: 'Report.PDF' }), 'report')).toBe(true);
    expect(matchesKeyword(msg('secret', undefined, 'encrypted'), 'secret')).toBe(false);
    expect(matchesKeyword(msg(''), '')).toBe(false);
  });

  it('a keyword\'s grams are among the grams of every text containing it', () => {
    for (const [text, keyword] of [
      ['The Launch plan is ready', 'plan is r'],
      ['The Launch plan is ready', 'a'],
      ['a b c', 'b'],
      ['明天開會討論設計', '論設'],
      ['x\u0000y', 'x y'],
    ]) {
      expect(matchesKeyword(msg(text), normalise(keyword!))).toBe(true);
      expect(narrowsTo(text!, keyword!)).toBe(true);
    }
    expect(keywordGrams('plan is r')).toEqual(['pl', 'la', 'an', 'is', 'r']);
    expect(keywordGrams('')).toEqual([]);
    expect(textGrams('ab c')).toEqual(['a', 'ab', 'b', 'c']);
  });
});
