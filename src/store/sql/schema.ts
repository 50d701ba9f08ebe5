import { type Db, type Engine, identityColumn } from './db.js';

/**
 * Versioned migrations, applied in order at start under the database-wide migration lock.
 * Append new versions; never edit one that has shipped. Records are JSON documents (`doc`)
 * beside the columns the hot queries filter or sort on; see docs/architecture.md for the
 * cost of each hot query against these indexes.
 */
const MIGRATIONS: { version: number; statements: (engine: Engine) => string[] }[] = [
  {
    version: 1,
    statements: (engine) => [
      `CREATE TABLE apps (id TEXT PRIMARY KEY, api_key_hash TEXT NOT NULL, doc TEXT NOT NULL)`,
      `CREATE INDEX apps_by_key ON apps (api_key_hash)`,
      `CREATE TABLE users (app TEXT NOT NULL, id TEXT NOT NULL, created_at BIGINT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (app, id))`,
      `CREATE INDEX users_by_age ON users (app, created_at, id)`,
      `CREATE TABLE tokens (app TEXT NOT NULL, hash TEXT NOT NULL, user_id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (app, hash))`,
      `CREATE INDEX tokens_by_user ON tokens (app, user_id)`,
      // doc: the room without memberState / lastMessageId / lastActivityAt, which live in columns
      // and rows of their own so a send never rewrites the document. version: bumped on every doc change.
      `CREATE TABLE rooms (app TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, version BIGINT NOT NULL,
        last_message_id TEXT, last_activity_at BIGINT NOT NULL, message_count BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (app, id))`,
      `CREATE TABLE members (app TEXT NOT NULL, room TEXT NOT NULL, user_id TEXT NOT NULL, state TEXT NOT NULL,
        last_read TEXT, PRIMARY KEY (app, room, user_id))`,
      `CREATE INDEX members_by_user ON members (app, user_id, room)`,
      `CREATE TABLE messages (seq ${identityColumn(engine)}, app TEXT NOT NULL, id TEXT NOT NULL, room TEXT NOT NULL, doc TEXT NOT NULL)`,
      `CREATE UNIQUE INDEX messages_by_id ON messages (app, id)`,
      `CREATE INDEX messages_by_room ON messages (app, room, seq)`,
      `CREATE TABLE blocks (app TEXT NOT NULL, blocker TEXT NOT NULL, blockee TEXT NOT NULL, created_at BIGINT NOT NULL,
        PRIMARY KEY (app, blocker, blockee))`,
      `CREATE TABLE files (app TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (app, id))`,
      `CREATE TABLE prefs (app TEXT NOT NULL, user_id TEXT NOT NULL, pref_key TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (app, user_id, pref_key))`,
    ],
  },
  {
    // Offline delivery: push devices, and the outbox of webhook calls and push notifications.
    version: 2,
    statements: () => [
      `CREATE TABLE devices (app TEXT NOT NULL, user_id TEXT NOT NULL, type TEXT NOT NULL, device_id TEXT NOT NULL,
        token TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (app, user_id, type, device_id))`,
      `CREATE TABLE outbox (app TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL, next_at BIGINT NOT NULL, claim TEXT, last_error TEXT,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (app, id))`,
      // What the workers' claim scans: only pending rows, by due time.
      `CREATE INDEX outbox_due ON outbox (next_at) WHERE status = 'pending'`,
      // The deliveries list and the pruning of settled rows.
      `CREATE INDEX outbox_recent ON outbox (app, updated_at)`,
    ],
  },
  {
    // The SDK features (issue 14): files shared by message, delete-for-me, room invitations.
    version: 3,
    statements: () => [
      `CREATE TABLE file_rooms (app TEXT NOT NULL, file TEXT NOT NULL, room TEXT NOT NULL, PRIMARY KEY (app, file, room))`,
      `CREATE TABLE user_deleted (app TEXT NOT NULL, user_id TEXT NOT NULL, room TEXT NOT NULL, message TEXT NOT NULL,
        PRIMARY KEY (app, user_id, room, message))`,
      `CREATE TABLE invitations (app TEXT NOT NULL, room TEXT NOT NULL, invitee TEXT NOT NULL, created_at BIGINT NOT NULL,
        doc TEXT NOT NULL, PRIMARY KEY (app, room, invitee))`,
      `CREATE INDEX invitations_by_invitee ON invitations (app, invitee)`,
    ],
  },
  {
    // Rooms a user left or was removed from (`GET /rooms/quitted`), with the room preference they
    // had, and room preferences shared by a group (`/roomPrefs/:room/group/:group`). Self-contained:
    // renumbering this version touches nothing else.
    version: 5,
    statements: () => [
      `CREATE TABLE quitted_rooms (app TEXT NOT NULL, user_id TEXT NOT NULL, room TEXT NOT NULL, quitted_at BIGINT NOT NULL,
        pref TEXT NOT NULL, PRIMARY KEY (app, user_id, room))`,
      `CREATE INDEX quitted_rooms_by_room ON quitted_rooms (app, room)`,
      `CREATE TABLE group_room_prefs (app TEXT NOT NULL, grp TEXT NOT NULL, room TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (app, grp, room))`,
      `CREATE INDEX group_room_prefs_by_room ON group_room_prefs (app, room)`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

export class SchemaTooNewError extends Error {}

/**
 * Brings the database to SCHEMA_VERSION. Safe when several nodes start at once (they take
 * the migration lock in turn; the later ones find nothing to do). Refuses a database whose
 * schema is newer than this code knows: an older node must not write to it.
 */
export async function migrate(db: Db): Promise<{ from: number; to: number }> {
  return db.withMigrationLock(async (q) => {
    await q.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`);
    const [row] = await q.all<{ v: number | null }>(`SELECT MAX(version) AS v FROM schema_migrations`);
    const from = Number(row?.v ?? 0);
    if (from > SCHEMA_VERSION) {
      throw new SchemaTooNewError(
        `the database schema is at version ${from}, newer than this roomcast knows (${SCHEMA_VERSION}); run a newer roomcast`,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      for (const sql of m.statements(db.engine)) await q.run(sql);
      await q.run(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, [m.version, Date.now()]);
    }
    return { from, to: SCHEMA_VERSION };
  });
}
