import type { MessageRecord } from './models.js';

/**
 * An in-process inverted index of message text, one per application: character bigrams (and
 * single characters, for one-letter and CJK searches) of the normalised text → message ids.
 * A keyword's candidates are the intersection of its grams' postings, so a search costs the
 * size of the rarest gram's posting list, never a scan of history. Candidates are confirmed
 * against the stored message by the caller (substring match), which also drops deleted ones.
 *
 * The message service indexes what this node stores; before a search, `SearchService` catches
 * each room up from the store (messages stored by other nodes or before a restart), from a
 * per-room watermark. Known limits (until the SQL store's full-text index replaces it): a room
 * seen for the first time is back-filled with its latest messages only; an edit made through
 * another node is not re-indexed (its old text no longer matches, the new is not found); at
 * most `maxPerApp` messages per application are kept (oldest indexed forgotten first).
 */
export class SearchIndex {
  constructor(private maxPerApp = 200_000) {}

  /** app → gram → message ids */
  private postings = new Map<string, Map<string, Set<string>>>();
  /** app → message id → { room, grams } (to unindex on edit/delete) */
  private entries = new Map<string, Map<string, { room: string; grams: string[] }>>();

  /** app → room → the newest message id this node has caught up to from the store. */
  private watermarks = new Map<string, Map<string, string>>();

  watermark(appId: string, roomId: string): string | undefined {
    return this.watermarks.get(appId)?.get(roomId);
  }

  setWatermark(appId: string, roomId: string, messageId: string | undefined): void {
    const rooms = this.appMap(this.watermarks, appId);
    if (messageId === undefined) rooms.delete(roomId);
    else rooms.set(roomId, messageId);
  }

  /** Indexes (or re-indexes) a message's searchable text. */
  add(appId: string, message: MessageRecord): void {
    this.remove(appId, message.id);
    const text = searchableText(message);
    if (!text) return;
    const grams = gramsOf(normalise(text));
    if (grams.length === 0) return;
    const postings = this.appMap(this.postings, appId);
    for (const gram of grams) {
      let ids = postings.get(gram);
      if (!ids) postings.set(gram, (ids = new Set()));
      ids.add(message.id);
    }
    const entries = this.appMap(this.entries, appId);
    entries.set(message.id, { room: message.room, grams });
    // Maps keep insertion order: the first key is the oldest indexed message.
    if (entries.size > this.maxPerApp) this.remove(appId, entries.keys().next().value!);
  }

  remove(appId: string, messageId: string): void {
    const entry = this.entries.get(appId)?.get(messageId);
    if (!entry) return;
    const postings = this.postings.get(appId)!;
    for (const gram of entry.grams) {
      const ids = postings.get(gram);
      ids?.delete(messageId);
      if (ids?.size === 0) postings.delete(gram);
    }
    this.entries.get(appId)!.delete(messageId);
  }

  /** Every indexed message of a room (clearing a room's history). */
  removeRoom(appId: string, roomId: string): void {
    for (const [id, entry] of this.entries.get(appId) ?? []) if (entry.room === roomId) this.remove(appId, id);
  }

  dropApp(appId: string): void {
    this.postings.delete(appId);
    this.entries.delete(appId);
    this.watermarks.delete(appId);
  }

  /**
   * Candidate message ids for a keyword in the allowed rooms, newest indexed first, at most
   * `limit`. Candidates may be false positives (grams present, not contiguous): confirm them.
   */
  candidates(appId: string, keyword: string, allowedRooms: ReadonlySet<string>, limit: number): { id: string; room: string }[] {
    const grams = gramsOf(normalise(keyword));
    const postings = this.postings.get(appId);
    const entries = this.entries.get(appId);
    if (!postings || !entries || grams.length === 0) return [];
    const lists: Set<string>[] = [];
    for (const gram of new Set(grams)) {
      const ids = postings.get(gram);
      if (!ids) return [];
      lists.push(ids);
    }
    lists.sort((a, b) => a.size - b.size);
    const [rarest, ...rest] = lists;
    const out: { id: string; room: string }[] = [];
    const ids = [...rarest!];
    for (let i = ids.length - 1; i >= 0 && out.length < limit; i--) {
      const id = ids[i]!;
      const room = entries.get(id)?.room;
      if (room === undefined || !allowedRooms.has(room)) continue;
      if (rest.every((list) => list.has(id))) out.push({ id, room });
    }
    return out;
  }

  private appMap<V>(maps: Map<string, Map<string, V>>, appId: string): Map<string, V> {
    let map = maps.get(appId);
    if (!map) maps.set(appId, (map = new Map()));
    return map;
  }
}

/** Lower case, compatibility-normalised, whitespace collapsed: what both text and keyword are matched as. */
export function normalise(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
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

/** Distinct single characters and adjacent pairs (a one-character text gives just itself). */
function gramsOf(text: string): string[] {
  const chars = [...text].filter((c) => c !== ' ');
  const grams = new Set<string>();
  const all = [...text];
  for (const c of chars) grams.add(c);
  for (let i = 0; i + 1 < all.length; i++) {
    if (all[i] !== ' ' && all[i + 1] !== ' ') grams.add(all[i]! + all[i + 1]!);
  }
  return [...grams];
}
