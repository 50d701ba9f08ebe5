import type { MessageRecord } from './models.js';

/**
 * What message search matches, shared by the store's full-text index and its callers: a
 * message is found by a keyword when the keyword, normalised, is a substring of the message's
 * normalised searchable text. The index stores each message's character grams (every single
 * character and every adjacent pair), so any keyword — a single CJK character, a two-character
 * Chinese word, part of a Latin word — narrows to candidates by its own grams; candidates are
 * then confirmed by the substring test.
 */

/** Lower case, compatibility-normalised, whitespace collapsed: what both text and keyword are matched as. */
export function normalise(text: string): string {
  // NUL is not storable as PostgreSQL text: it counts as whitespace.
  return text.normalize('NFKC').toLowerCase().replace(/\u0000/g, ' ').replace(/\s+/g, ' ').trim();
}

/** The text a message is found by: its `message` when it is text, and a file's name. */
export function searchableText(message: MessageRecord): string {
  const parts: string[] = [];
  if (typeof message.message === 'string' && message.messageType !== 'encrypted') parts.push(message.message);
  const extra = message.fields.extra;
  if (extra && typeof extra === 'object' && !Array.isArray(extra)) {
    const name = (extra as Record<string, unknown>).fileName ?? (extra as Record<string, unknown>).title;
    if (typeof name === 'string') parts.push(name);
  }
  return parts.join(' ').slice(0, 10_000);
}

/** The normalised searchable text of a message (empty when it has none, e.g. recalled). */
export function searchKey(message: MessageRecord): string {
  return normalise(searchableText(message));
}

/** Whether a message matches an already normalised keyword. */
export function matchesKeyword(message: MessageRecord, keyword: string): boolean {
  return keyword !== '' && searchKey(message).includes(keyword);
}

/**
 * Visits every distinct character (`char`) and adjacent pair of characters (`pair`) of
 * normalised text, spaces excluded, as code points, in text order (a pair before its second
 * character): what is indexed. Code points, not strings, so that the send path builds no
 * string per gram just to find out whether it was met before.
 */
export function visitGrams(text: string, char: (cp: number) => void, pair: (first: number, second: number) => void): void {
  const chars = new Set<number>();
  // Pairs by their first code point: small integers as keys all the way (no string per pair).
  const pairs = new Map<number, Set<number>>();
  let prev = -1;
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (cp === 0x20) {
      prev = -1;
      continue;
    }
    if (prev !== -1) {
      let seconds = pairs.get(prev);
      if (seconds === undefined) pairs.set(prev, (seconds = new Set()));
      if (!seconds.has(cp)) {
        seconds.add(cp);
        pair(prev, cp);
      }
    }
    if (!chars.has(cp)) {
      chars.add(cp);
      char(cp);
    }
    prev = cp;
  }
}

/** Every distinct character and adjacent pair of characters of normalised text (spaces excluded): what is indexed. */
export function textGrams(text: string): string[] {
  const grams: string[] = [];
  visitGrams(
    text,
    (cp) => grams.push(String.fromCodePoint(cp)),
    (first, second) => grams.push(String.fromCodePoint(first, second)),
  );
  return grams;
}

/**
 * The grams every text containing the (normalised) keyword has: its adjacent pairs, and the
 * characters no pair covers (a one-character keyword, or a word of one letter between spaces).
 * Empty for an empty keyword.
 */
export function keywordGrams(keyword: string): string[] {
  const chars = [...keyword];
  const grams = new Set<string>();
  chars.forEach((c, i) => {
    if (c === ' ') return;
    const next = chars[i + 1];
    const prev = chars[i - 1];
    if (next !== undefined && next !== ' ') grams.add(c + next);
    else if (prev === undefined || prev === ' ') grams.add(c);
  });
  return [...grams];
}
