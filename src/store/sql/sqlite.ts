import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Db, Param, Queryer, Row } from './db.js';

export interface SqliteOptions {
  /**
   * `normal` (default): in WAL mode a commit is written to the log (the OS has it) without an
   * fsync, so an acknowledged write survives a crash or SIGKILL of the process; a power loss or
   * OS crash may lose the last commits. `full`: every commit is fsynced too (survives power
   * loss), at one fsync per group commit, during which the event loop waits (the driver is
   * synchronous).
   */
  synchronous?: 'full' | 'normal';
}

/**
 * Who holds a database file in this process. Connections to the same file share it: SQLite's
 * own lock would make a second connection's BEGIN wait synchronously (busy_timeout) on the
 * one thread that must finish the first transaction.
 */
class Gate {
  busy = false;
  waiting: (() => void)[] = [];
  acquire(): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }
}
/** What the connections of this process to one database file share. */
interface SharedFile {
  gate: Gate;
  connections: Set<SqliteDb>;
}
const files = new Map<string, SharedFile>();

/**
 * better-sqlite3 adapter. The driver is synchronous, so a statement outside a transaction
 * runs at once; a transaction takes the connection (a promise queue) so that statements of
 * other requests, issued while its body awaits, never run inside it.
 */
export class SqliteDb implements Db {
  readonly engine = 'sqlite' as const;
  readonly forUpdate = '';
  private db: Database.Database;
  private statements = new Map<string, Database.Statement>();
  private gate: Gate;
  private shared: SharedFile;
  private direct: Queryer;
  private dataVersion: Database.Statement;
  private lastDataVersion: unknown;
  private versionAskedThisTurn = false;
  private readonly nextTurn = () => {
    this.versionAskedThisTurn = false;
  };

  constructor(readonly file: string, options: SqliteOptions = {}) {
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file);
    const shared: SharedFile = (file === ':memory:' ? undefined : files.get(path.resolve(file))) ?? { gate: new Gate(), connections: new Set() };
    shared.connections.add(this);
    if (file !== ':memory:') files.set(path.resolve(file), shared);
    this.shared = shared;
    this.gate = shared.gate;
    // WAL: readers never wait for the writer, and a commit is one append (+ fsync) to the log.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    // Full Unicode lower case for queries (user-filter.ts); SQLite's own lower() folds ASCII only.
    // Used by queries only, never by the schema, so the file stays readable by any SQLite.
    this.db.function('unicode_lower', { deterministic: true }, (text: unknown) => (typeof text === 'string' ? text.toLowerCase() : text));
    this.dataVersion = this.db.prepare('PRAGMA data_version').pluck();
    this.lastDataVersion = this.dataVersion.get();
    this.direct = { all: async (sql, params) => this.allNow(sql, params), run: async (sql, params) => this.runNow(sql, params) };
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }
  private allNow<R extends object>(sql: string, params: readonly Param[] = []): R[] {
    const statement = this.statement(sql);
    const rows = statement.all(...params) as R[];
    if (!statement.readonly) this.wrote();
    return rows;
  }
  private runNow(sql: string, params: readonly Param[] = []): number {
    const changes = this.statement(sql).run(...params).changes;
    this.wrote();
    return changes;
  }

  /**
   * A write committed (or made inside this connection's transaction, committed with it): the
   * other connections of this process must ask `data_version` again, even within this turn,
   * since their next read may follow this write (one promise chain spans both connections).
   */
  private wrote(): void {
    if (this.shared.connections.size === 1) return;
    for (const other of this.shared.connections) if (other !== this) other.versionAskedThisTurn = false;
  }

  async all<R extends object = Row>(sql: string, params?: readonly Param[]): Promise<R[]> {
    return this.gate.busy ? this.queued(() => this.allNow<R>(sql, params)) : this.allNow<R>(sql, params);
  }
  async run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.gate.busy ? this.queued(() => this.runNow(sql, params)) : this.runNow(sql, params);
  }
  /** Waits for the running transaction and runs the statement holding the connection. */
  private async queued<T>(statement: () => T): Promise<T> {
    await this.acquire();
    try {
      return statement();
    } finally {
      this.release();
    }
  }

  async tx<T>(fn: (q: Queryer) => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        this.db.exec('COMMIT');
        this.wrote();
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    } finally {
      this.release();
    }
  }

  /**
   * SQLite's data_version moves on every commit by another connection, never on this one's own.
   * Asked once per event-loop turn (each ask is a read transaction: file locks, system calls),
   * and again after a write by another connection of this process (`wrote`). That is still
   * exact: a commit by another process can only come to matter here through I/O (a request, a
   * reply), which starts a new turn.
   */
  changedElsewhere(): boolean {
    if (this.versionAskedThisTurn) return false;
    this.versionAskedThisTurn = true;
    setImmediate(this.nextTurn);
    const now = this.dataVersion.get();
    if (now === this.lastDataVersion) return false;
    this.lastDataVersion = now;
    return true;
  }

  /** BEGIN IMMEDIATE takes SQLite's file-wide write lock: one migrating process at a time. */
  withMigrationLock<T>(fn: (q: Queryer) => Promise<T>): Promise<T> {
    return this.tx(fn);
  }

  private acquire(): Promise<void> {
    return this.gate.acquire();
  }
  private release(): void {
    this.gate.release();
  }

  /** An online, consistent copy of the database (SQLite's backup API) while it is in use. */
  async backup(to: string): Promise<void> {
    await this.db.backup(to);
  }

  ready(): boolean {
    return this.db.open;
  }
  async close(): Promise<void> {
    if (!this.db.open) return;
    this.db.close();
    this.shared.connections.delete(this);
    if (this.shared.connections.size === 0) files.delete(path.resolve(this.file));
  }
}
