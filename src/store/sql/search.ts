import type { MessageRecord } from '../../core/models.js';
import { keywordGrams, searchKey, textGrams, visitGrams } from '../../core/search-text.js';
import type { Engine, Param, Queryer } from './db.js';

/**
 * The message search index on each engine (schema version 4). Both index the same thing: the
 * character grams of a message's normalised searchable text (core/search-text.ts).
 *
 * - SQLite: the contentless FTS5 table `message_grams` (rowid = the message's seq). FTS5's
 *   `ascii` tokenizer splits on ASCII punctuation, so each gram is written as one token of hex
 *   code points (`设计` → `8bbex8ba1`); a keyword's grams are an AND of quoted tokens. A trigger
 *   removes a message's row whatever deletes the message.
 * - PostgreSQL: `messages.search_grams` (text[]) under a GIN index; a keyword matches by
 *   containment (`@>`). Deleting the row removes its entries.
 *
 * Either way the grams only narrow to candidates: the store confirms each by substring.
 */

/** Hex of code points below 0x10000, made once each (chat text repeats its characters). */
const HEX: string[] = new Array<string>(0x10000);
const hex = (cp: number): string => (cp < 0x10000 ? (HEX[cp] ??= cp.toString(16)) : cp.toString(16));

/** One FTS5 token per gram: its code points in hex, joined by `x` (`设计` → `8bbex8ba1`). */
function token(gram: string): string {
  return [...gram].map((c) => hex(c.codePointAt(0)!)).join('x');
}

/** The FTS5 tokens of normalised text, space-separated, built straight from its code points. */
function sqliteTokens(text: string): string {
  let out = '';
  visitGrams(
    text,
    (cp) => {
      out += out === '' ? hex(cp) : ` ${hex(cp)}`;
    },
    (first, second) => {
      out += `${out === '' ? '' : ' '}${hex(first)}x${hex(second)}`;
    },
  );
  return out;
}

/** The grams of a message as the statement parameter: space-separated, null when it has no searchable text. */
export function gramsParam(engine: Engine, message: MessageRecord): string | null {
  const text = searchKey(message);
  const grams = engine === 'sqlite' ? sqliteTokens(text) : textGrams(text).join(' ');
  return grams === '' ? null : grams;
}

/** PostgreSQL: the expression turning `gramsParam` into the column's value. */
export const PG_GRAMS = `string_to_array(?, ' ')`;

/** SQLite: (re)writes the FTS rows of messages by seq (removing the old row first). */
export async function indexSqlite(q: Queryer, rows: readonly { seq: number; message: MessageRecord }[]): Promise<void> {
  for (const { seq, message } of rows) {
    await q.run(`DELETE FROM message_grams WHERE rowid = ?`, [seq]);
    const grams = gramsParam('sqlite', message);
    if (grams !== null) await q.run(`INSERT INTO message_grams (rowid, grams) VALUES (?, ?)`, [seq, grams]);
  }
}

/** SQLite: indexes messages just inserted (no row of theirs exists yet), one statement per chunk. */
export async function indexNewSqlite(q: Queryer, rows: readonly { seq: number; message: MessageRecord }[]): Promise<void> {
  const values: Param[][] = [];
  for (const { seq, message } of rows) {
    const grams = gramsParam('sqlite', message);
    if (grams !== null) values.push([seq, grams]);
  }
  for (let i = 0; i < values.length; i += 200) {
    const part = values.slice(i, i + 200);
    await q.run(`INSERT INTO message_grams (rowid, grams) VALUES ${part.map(() => '(?, ?)').join(', ')}`, part.flat());
  }
}

/**
 * Candidate rows for a keyword in the given rooms, newest first, with seq below `beforeSeq`:
 * every message whose text contains the keyword is among them (and a few that do not).
 */
export async function searchCandidates(
  db: Queryer,
  engine: Engine,
  appId: string,
  roomIds: readonly string[],
  keyword: string,
  beforeSeq: number,
  limit: number,
): Promise<{ seq: number; doc: string }[]> {
  const grams = keywordGrams(keyword);
  if (grams.length === 0 || roomIds.length === 0) return [];
  const rooms = JSON.stringify(roomIds);
  if (engine === 'sqlite') {
    // The FTS table drives (rowid order, newest first) and stops at the limit.
    return db.all(
      `SELECT m.seq, m.doc FROM message_grams JOIN messages m ON m.seq = message_grams.rowid
       WHERE message_grams MATCH ? AND message_grams.rowid < ? AND m.app = ? AND m.room IN (SELECT value FROM json_each(?))
       ORDER BY message_grams.rowid DESC LIMIT ?`,
      [grams.map((g) => `"${token(g)}"`).join(' '), beforeSeq, appId, rooms, limit],
    );
  }
  // The planner picks the GIN index (rare grams) or a walk back through the rooms' history (common ones).
  return db.all(
    `SELECT m.seq, m.doc FROM messages m
     WHERE m.app = ? AND m.search_grams @> ${PG_GRAMS} AND m.seq < ? AND m.room IN (SELECT json_array_elements_text(CAST(? AS json)))
     ORDER BY m.seq DESC LIMIT ?`,
    [appId, grams.join(' '), beforeSeq, rooms, limit],
  );
}

/** The columns a message's document decides besides its grams: creation time, batch id (`listAppMessages`). */
export function listingParams(message: MessageRecord): [number, string | null] {
  return [message.createdAt, typeof message.fields.batchID === 'string' ? message.fields.batchID : null];
}

/** Migration 4: fills the new columns and the search index for the messages already stored, a page at a time. */
export async function backfillMessageColumns(q: Queryer, engine: Engine): Promise<void> {
  let after = 0;
  for (;;) {
    const rows = await q.all<{ seq: number; doc: string }>(`SELECT seq, doc FROM messages WHERE seq > ? ORDER BY seq LIMIT 500`, [after]);
    if (rows.length === 0) return;
    const parsed = rows.map((r) => ({ seq: Number(r.seq), message: JSON.parse(r.doc) as MessageRecord }));
    const grams = engine === 'postgres' ? `, search_grams = string_to_array(v.column4, ' ')` : '';
    await q.run(
      `UPDATE messages SET created_at = v.column2, batch_id = v.column3${grams}
       FROM (VALUES ${parsed.map(() => '(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT))').join(', ')}) AS v
       WHERE messages.seq = v.column1`,
      parsed.flatMap((r) => [r.seq, ...listingParams(r.message), engine === 'postgres' ? gramsParam(engine, r.message) : null]),
    );
    if (engine === 'sqlite') await indexNewSqlite(q, parsed);
    after = parsed.at(-1)!.seq;
  }
}
