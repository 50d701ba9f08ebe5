import type {
  AppRecord,
  BlockRecord,
  DeviceRecord,
  FileRecord,
  InvitationRecord,
  MemberState,
  MessageRecord,
  OutboxItem,
  PrefRecord,
  QuittedRoom,
  RoomRecord,
  TokenRecord,
  UserRecord,
} from '../../core/models.js';
import { type Db, type Engine, marks, type Param, type Queryer } from './db.js';
import { SCHEMA_VERSION } from './schema.js';
import { gramsParam, indexNewSqlite, listingParams, PG_GRAMS } from './search.js';
import { isGroup } from './store.js';

/**
 * Export and import as JSON lines, streamed both ways, to move an installation between
 * engines (SQLite ⇄ PostgreSQL) or machines. One record per line; order: applications, then
 * each table's rows, rooms before their messages, messages in history order.
 */
export type ExportLine =
  | { type: 'roomcast-export'; version: 1; schemaVersion: number }
  | { type: 'app'; record: AppRecord }
  | { type: 'user'; app: string; record: UserRecord }
  | { type: 'token'; app: string; record: TokenRecord }
  | { type: 'room'; app: string; record: RoomRecord }
  | { type: 'message'; app: string; record: MessageRecord }
  | { type: 'block'; app: string; record: BlockRecord }
  | { type: 'file'; app: string; record: FileRecord }
  | { type: 'pref'; app: string; user: string; record: PrefRecord }
  | { type: 'file-room'; app: string; record: { file: string; room: string } }
  | { type: 'user-deleted'; app: string; record: { user: string; room: string; message: string } }
  | { type: 'invitation'; app: string; record: InvitationRecord }
  | { type: 'quitted-room'; app: string; user: string; record: QuittedRoom }
  | { type: 'group-room-pref'; app: string; record: { group: string; room: string; pref: Record<string, unknown> } }
  | { type: 'device'; app: string; record: DeviceRecord }
  /** Deliveries still to make (settled ones are history and stay behind). */
  | { type: 'outbox'; app: string; record: OutboxItem };

const PAGE = 500;

/** Rows of one table in key order, a page at a time (keyset pagination: no OFFSET scans). */
async function* pages<R extends Record<string, unknown>>(db: Db, table: string, columns: string, keys: string[]): AsyncGenerator<R> {
  let after: Param[] | undefined;
  const order = keys.join(', ');
  for (;;) {
    const where = after ? `WHERE (${order}) > (${marks(keys.length)})` : '';
    const rows = await db.all<R>(`SELECT ${columns} FROM ${table} ${where} ORDER BY ${order} LIMIT ${PAGE}`, after ?? []);
    for (const row of rows) yield row;
    if (rows.length < PAGE) return;
    const last = rows.at(-1)!;
    after = keys.map((k) => last[k] as Param);
  }
}

export async function* exportData(db: Db): AsyncGenerator<ExportLine> {
  yield { type: 'roomcast-export', version: 1, schemaVersion: SCHEMA_VERSION };
  for await (const r of pages<{ doc: string }>(db, 'apps', 'id, doc', ['id'])) yield { type: 'app', record: JSON.parse(r.doc) };
  for await (const r of pages<{ app: string; doc: string }>(db, 'users', 'app, id, doc', ['app', 'id'])) {
    yield { type: 'user', app: r.app, record: JSON.parse(r.doc) };
  }
  for await (const r of pages<{ app: string; doc: string }>(db, 'tokens', 'app, hash, doc', ['app', 'hash'])) {
    yield { type: 'token', app: r.app, record: JSON.parse(r.doc) };
  }
  for await (const r of pages<{ app: string; blocker: string; blockee: string; created_at: number }>(db, 'blocks', 'app, blocker, blockee, created_at', ['app', 'blocker', 'blockee'])) {
    yield { type: 'block', app: r.app, record: { blocker: r.blocker, blockee: r.blockee, createdAt: Number(r.created_at) } };
  }
  for await (const r of pages<{ app: string; doc: string }>(db, 'files', 'app, id, doc', ['app', 'id'])) {
    yield { type: 'file', app: r.app, record: JSON.parse(r.doc) };
  }
  for await (const r of pages<{ app: string; user_id: string; pref_key: string; data: string }>(db, 'prefs', 'app, user_id, pref_key, data', ['app', 'user_id', 'pref_key'])) {
    yield { type: 'pref', app: r.app, user: r.user_id, record: { key: r.pref_key, data: JSON.parse(r.data) } };
  }
  for await (const r of pages<{ app: string; file: string; room: string }>(db, 'file_rooms', 'app, file, room', ['app', 'file', 'room'])) {
    yield { type: 'file-room', app: r.app, record: { file: r.file, room: r.room } };
  }
  for await (const r of pages<{ app: string; user_id: string; room: string; message: string }>(db, 'user_deleted', 'app, user_id, room, message', ['app', 'user_id', 'room', 'message'])) {
    yield { type: 'user-deleted', app: r.app, record: { user: r.user_id, room: r.room, message: r.message } };
  }
  for await (const r of pages<{ app: string; doc: string }>(db, 'invitations', 'app, room, invitee, doc', ['app', 'room', 'invitee'])) {
    yield { type: 'invitation', app: r.app, record: JSON.parse(r.doc) };
  }
  for await (const r of pages<{ app: string; user_id: string; room: string; quitted_at: number; pref: string }>(db, 'quitted_rooms', 'app, user_id, room, quitted_at, pref', ['app', 'user_id', 'room'])) {
    yield { type: 'quitted-room', app: r.app, user: r.user_id, record: { roomId: r.room, quittedAt: Number(r.quitted_at), pref: JSON.parse(r.pref) } };
  }
  for await (const r of pages<{ app: string; grp: string; room: string; data: string }>(db, 'group_room_prefs', 'app, grp, room, data', ['app', 'grp', 'room'])) {
    yield { type: 'group-room-pref', app: r.app, record: { group: r.grp, room: r.room, pref: JSON.parse(r.data) } };
  }
  type DeviceRow = { app: string; user_id: string; type: DeviceRecord['type']; device_id: string; token: string; created_at: number };
  for await (const r of pages<DeviceRow>(db, 'devices', 'app, user_id, type, device_id, token, created_at', ['app', 'user_id', 'type', 'device_id'])) {
    yield { type: 'device', app: r.app, record: { userId: r.user_id, type: r.type, deviceId: r.device_id, token: r.token, createdAt: Number(r.created_at) } };
  }
  type OutboxRow = { app: string; id: string; kind: OutboxItem['kind']; payload: string; status: string; attempts: number; next_at: number; last_error: string | null; created_at: number; updated_at: number };
  for await (const r of pages<OutboxRow>(db, 'outbox', 'app, id, kind, payload, status, attempts, next_at, last_error, created_at, updated_at', ['app', 'id'])) {
    if (r.status !== 'pending') continue;
    const record: OutboxItem = {
      id: r.id, appId: r.app, kind: r.kind, payload: JSON.parse(r.payload), status: 'pending', attempts: Number(r.attempts),
      nextAt: Number(r.next_at), createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
    };
    if (r.last_error !== null) record.lastError = r.last_error;
    yield { type: 'outbox', app: r.app, record };
  }
  type RoomRow = { app: string; id: string; doc: string; last_message_id: string | null; last_activity_at: number };
  for await (const r of pages<RoomRow>(db, 'rooms', 'app, id, doc, last_message_id, last_activity_at', ['app', 'id'])) {
    const memberState: Record<string, MemberState> = {};
    const members = await db.all<{ user_id: string; state: string; last_read: string | null }>(
      `SELECT user_id, state, last_read FROM members WHERE app = ? AND room = ?`,
      [r.app, r.id],
    );
    for (const m of members) {
      const state = JSON.parse(m.state) as MemberState | null;
      if (!state) continue;
      if (m.last_read !== null) state.lastRead = m.last_read;
      memberState[m.user_id] = state;
    }
    const room: RoomRecord = { ...JSON.parse(r.doc), memberState, lastActivityAt: Number(r.last_activity_at) };
    if (r.last_message_id !== null) room.lastMessageId = r.last_message_id;
    yield { type: 'room', app: r.app, record: room };
  }
  for await (const r of pages<{ app: string; doc: string }>(db, 'messages', 'seq, app, doc', ['seq'])) {
    yield { type: 'message', app: r.app, record: JSON.parse(r.doc) };
  }
}

export class ImportError extends Error {}

/**
 * Writes exported lines (from `openLines`) into an empty database, in transactions of up to PAGE lines.
 * Rows are written as exported (no send-path side effects), message counts recomputed at the end.
 */
export async function importData(db: Db, openLines: () => AsyncIterable<string>): Promise<Record<string, number>> {
  const [existing] = await db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM apps`);
  if (Number(existing?.n ?? 0) > 0) throw new ImportError('the target database already holds applications; import into an empty one');
  // Opened only now and iterated at once: a readline interface drops the lines it reads before
  // anyone iterates it (and the process would end quietly on the lost 'close').
  const lines = openLines();
  const counts: Record<string, number> = {};
  let batch: ExportLine[] = [];
  let lineNo = 0;
  let sawHeader = false;
  const flush = async () => {
    const todo = batch;
    batch = [];
    if (todo.length > 0) await db.tx((q) => writeLines(q, db.engine, todo));
  };
  for await (const text of lines) {
    lineNo++;
    if (text.trim() === '') continue;
    let line: ExportLine;
    try {
      line = JSON.parse(text) as ExportLine;
    } catch {
      throw new ImportError(`line ${lineNo}: not JSON`);
    }
    if (line.type === 'roomcast-export') {
      if (line.version !== 1) throw new ImportError(`line ${lineNo}: export format version ${line.version} is not supported`);
      sawHeader = true;
      continue;
    }
    if (!sawHeader) throw new ImportError('not a roomcast export (its first line is the roomcast-export header)');
    if (!KNOWN.has(line.type)) throw new ImportError(`line ${lineNo}: unknown record type '${String((line as { type: unknown }).type)}'`);
    counts[line.type] = (counts[line.type] ?? 0) + 1;
    batch.push(line);
    if (batch.length >= PAGE) await flush();
  }
  await flush();
  await db.run(`UPDATE rooms SET message_count = (SELECT COUNT(*) FROM messages m WHERE m.app = rooms.app AND m.room = rooms.id)`);
  return counts;
}

const KNOWN = new Set(['app', 'user', 'token', 'room', 'message', 'block', 'file', 'pref', 'file-room', 'user-deleted', 'invitation', 'quitted-room', 'group-room-pref', 'device', 'outbox']);

/** A message row, its listing columns and its search index entry (search.ts). */
async function writeMessage(q: Queryer, engine: Engine, appId: string, message: MessageRecord): Promise<void> {
  const params = [appId, message.id, message.room, JSON.stringify(message), ...listingParams(message)];
  if (engine === 'postgres') {
    await q.run(`INSERT INTO messages (app, id, room, doc, created_at, batch_id, search_grams) VALUES (?, ?, ?, ?, ?, ?, ${PG_GRAMS})`, [
      ...params, gramsParam(engine, message),
    ]);
    return;
  }
  const [row] = await q.all<{ seq: number }>(`INSERT INTO messages (app, id, room, doc, created_at, batch_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`, params);
  await indexNewSqlite(q, [{ seq: Number(row!.seq), message }]);
}

async function writeLines(q: Queryer, engine: Engine, lines: readonly ExportLine[]): Promise<void> {
  for (const line of lines) {
    switch (line.type) {
      case 'app':
        await q.run(`INSERT INTO apps (id, api_key_hash, doc) VALUES (?, ?, ?)`, [line.record.id, line.record.apiKeyHash, JSON.stringify(line.record)]);
        break;
      case 'user':
        await q.run(`INSERT INTO users (app, id, created_at, doc, is_group) VALUES (?, ?, ?, ?, ?)`, [
          line.app, line.record.id, line.record.createdAt, JSON.stringify(line.record), isGroup(line.record),
        ]);
        break;
      case 'token':
        await q.run(`INSERT INTO tokens (app, hash, user_id, doc) VALUES (?, ?, ?, ?)`, [line.app, line.record.hash, line.record.userId, JSON.stringify(line.record)]);
        break;
      case 'block':
        await q.run(`INSERT INTO blocks (app, blocker, blockee, created_at) VALUES (?, ?, ?, ?)`, [line.app, line.record.blocker, line.record.blockee, line.record.createdAt]);
        break;
      case 'file':
        await q.run(`INSERT INTO files (app, id, doc) VALUES (?, ?, ?)`, [line.app, line.record.id, JSON.stringify(line.record)]);
        break;
      case 'pref':
        await q.run(`INSERT INTO prefs (app, user_id, pref_key, data) VALUES (?, ?, ?, ?)`, [line.app, line.user, line.record.key, JSON.stringify(line.record.data ?? null)]);
        break;
      case 'file-room':
        await q.run(`INSERT INTO file_rooms (app, file, room) VALUES (?, ?, ?)`, [line.app, line.record.file, line.record.room]);
        break;
      case 'user-deleted':
        await q.run(`INSERT INTO user_deleted (app, user_id, room, message) VALUES (?, ?, ?, ?)`, [line.app, line.record.user, line.record.room, line.record.message]);
        break;
      case 'invitation':
        await q.run(`INSERT INTO invitations (app, room, invitee, created_at, doc) VALUES (?, ?, ?, ?, ?)`, [
          line.app, line.record.room, line.record.invitee, line.record.createdAt, JSON.stringify(line.record),
        ]);
        break;
      case 'quitted-room':
        await q.run(`INSERT INTO quitted_rooms (app, user_id, room, quitted_at, pref) VALUES (?, ?, ?, ?, ?)`, [
          line.app, line.user, line.record.roomId, line.record.quittedAt, JSON.stringify(line.record.pref),
        ]);
        break;
      case 'group-room-pref':
        await q.run(`INSERT INTO group_room_prefs (app, grp, room, data) VALUES (?, ?, ?, ?)`, [line.app, line.record.group, line.record.room, JSON.stringify(line.record.pref)]);
        break;
      case 'device':
        await q.run(`INSERT INTO devices (app, user_id, type, device_id, token, created_at) VALUES (?, ?, ?, ?, ?, ?)`, [
          line.app, line.record.userId, line.record.type, line.record.deviceId, line.record.token, line.record.createdAt,
        ]);
        break;
      case 'outbox': {
        const o = line.record;
        await q.run(
          `INSERT INTO outbox (app, id, kind, payload, status, attempts, next_at, claim, last_error, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, NULL, ?, ?, ?)`,
          [line.app, o.id, o.kind, JSON.stringify(o.payload), o.attempts, o.nextAt, o.lastError ?? null, o.createdAt, o.updatedAt],
        );
        break;
      }
      case 'room': {
        const { memberState, lastMessageId, lastActivityAt, ...doc } = line.record;
        await q.run(
          `INSERT INTO rooms (app, id, doc, version, last_message_id, last_activity_at, message_count) VALUES (?, ?, ?, 1, ?, ?, 0)`,
          [line.app, line.record.id, JSON.stringify(doc), lastMessageId ?? null, lastActivityAt],
        );
        for (const userId of line.record.members) {
          const state = memberState[userId];
          const { lastRead, ...rest } = state ?? { joinedAt: 0 };
          await q.run(`INSERT INTO members (app, room, user_id, state, last_read) VALUES (?, ?, ?, ?, ?)`, [
            line.app, line.record.id, userId, state ? JSON.stringify(rest) : 'null', lastRead ?? null,
          ]);
        }
        break;
      }
      case 'message':
        await writeMessage(q, engine, line.app, line.record);
        break;
    }
  }
}
