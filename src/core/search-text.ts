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

/** Every distinct character and adjacent pair of characters of normalised text (spaces excluded): what is indexed. */
export function textGrams(text: string): string[] {
  const chars = [...text];
  const grams = new Set<string>();
  chars.forEach((c, i) => {
    if (c === ' ') return;
    grams.add(c);
    const next = chars[i + 1];
    if (next !== undefined && next !== ' ') grams.add(c + next);
  });
  return [...grams];
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
