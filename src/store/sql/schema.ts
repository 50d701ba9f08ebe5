import { type Db, type Engine, identityColumn, type Queryer } from './db.js';
import { backfillMessageColumns } from './search.js';

/** A migration step: a statement, or work that needs code (a back-fill computed in JS). */
type Step = string | ((q: Queryer, engine: Engine) => Promise<void>);

/**
 * Versioned migrations, applied in order at start under the database-wide migration lock.
 * Append new versions; never edit one that has shipped. Records are JSON documents (`doc`)
 * beside the columns the hot queries filter or sort on; see docs/architecture.md for the
 * cost of each hot query against these indexes.
 */
const MIGRATIONS: { version: number; statements: (engine: Engine) => Step[] }[] = [
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
    // Message search in the database (issue 14): each message's character grams (search.ts),
    // kept in step with its text by the store's writes. SQLite: a contentless FTS5 table keyed
    // by the message's seq, emptied of a message's row by a trigger whatever deletes it.
    // PostgreSQL: a text[] column of the message row under a GIN index. Filled for the
    // messages already stored before the indexes are built.
    // The administrator's cross-room listing (`GET /admin/messages`, `GET /messages/batch`)
    // gets columns of its own: creation time and batch id, each indexed. And user groups a flag.
    version: 4,
    statements: (engine) => [
      `ALTER TABLE messages ADD COLUMN created_at BIGINT`,
      `ALTER TABLE messages ADD COLUMN batch_id TEXT`,
      ...(engine === 'sqlite'
        ? [
            `CREATE VIRTUAL TABLE message_grams USING fts5(grams, content='', contentless_delete=1, detail=none, tokenize='ascii')`,
            `CREATE TRIGGER messages_unindex AFTER DELETE ON messages BEGIN DELETE FROM message_grams WHERE rowid = old.seq; END`,
          ]
        : [`ALTER TABLE messages ADD COLUMN search_grams TEXT[]`]),
      backfillMessageColumns,
      ...(engine === 'sqlite' ? [] : [`CREATE INDEX messages_search ON messages USING GIN (search_grams)`]),
      `CREATE INDEX messages_by_time ON messages (app, created_at, seq)`,
      `CREATE INDEX messages_by_batch ON messages (app, batch_id) WHERE batch_id IS NOT NULL`,
      // User groups (`GET /admin/groups`) are users with a `group`: flagged, and indexed apart.
      `ALTER TABLE users ADD COLUMN is_group INTEGER NOT NULL DEFAULT 0`,
      engine === 'sqlite'
        ? `UPDATE users SET is_group = 1 WHERE json_type(doc, '$.group') = 'object'`
        : `UPDATE users SET is_group = 1 WHERE json_typeof(CAST(doc AS json) -> 'group') = 'object'`,
      `CREATE INDEX users_groups ON users (app, created_at, id) WHERE is_group = 1`,
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
  {
    // SQLite's search index merges its segments 8 at a time instead of 4: every group commit
    // writes a new segment, and with 4 the merges rewrote each entry more often (store cost of
    // a 16-message commit 43 -> 37 µs per message, bench/store-cost.mjs). A search reads at
    // most 7 segments per level instead of 3. A setting kept in the FTS table itself.
    version: 6,
    statements: (engine) => (engine === 'sqlite' ? [`INSERT INTO message_grams (message_grams, rank) VALUES ('automerge', 8)`] : []),
  },
];

export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

export class SchemaTooNewError extends Error {}

/**
 * Brings the database to SCHEMA_VERSION. Safe when several nodes start at once (they take
 * the migration lock in turn; the later ones find nothing to do). Refuses a database whose
 * schema is newer than this code knows: an older node must not write to it. `target` stops
 * at an older version (tests of a migration's back-fill).
 */
export async function migrate(db: Db, target = SCHEMA_VERSION): Promise<{ from: number; to: number }> {
  return db.withMigrationLock(async (q) => {
    await q.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`);
    const applied = new Set((await q.all<{ version: number }>(`SELECT version FROM schema_migrations`)).map((r) => Number(r.version)));
    const from = Math.max(0, ...applied);
    if (from > SCHEMA_VERSION) {
      throw new SchemaTooNewError(
        `the database schema is at version ${from}, newer than this roomcast knows (${SCHEMA_VERSION}); run a newer roomcast`,
      );
    }
    for (const m of MIGRATIONS) {
      // Each version not yet applied, even below the newest applied one: versions developed
      // apart may ship in either order (each migration stands on its own).
      if (applied.has(m.version) || m.version > target) continue;
      for (const step of m.statements(db.engine)) {
        if (typeof step === 'string') await q.run(step);
        else await step(q, db.engine);
      }
      await q.run(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, [m.version, Date.now()]);
    }
    return { from, to: Math.max(from, Math.min(target, SCHEMA_VERSION)) };
  });
}
