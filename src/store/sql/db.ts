/**
 * The thin dialect layer under the SQL store: the store's queries are written once, with `?`
 * placeholders and SQL that SQLite (3.35+) and PostgreSQL both accept; an engine adapter
 * runs them. What differs between the engines lives here and in the adapters only:
 * placeholders, identity columns, row locks, transactions and the migration lock.
 */
export type Param = string | number | null;
export type Row = Record<string, unknown>;

export type Engine = 'sqlite' | 'postgres';

/** Runs statements: on the shared connection(s), or inside one transaction. */
export interface Queryer {
  all<R extends object = Row>(sql: string, params?: readonly Param[]): Promise<R[]>;
  /** Runs a statement that returns no rows; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly Param[]): Promise<number>;
}

export interface Db extends Queryer {
  readonly engine: Engine;
  /** `FOR UPDATE` where row locks exist (PostgreSQL); SQLite's write transactions already hold the database. */
  readonly forUpdate: string;
  /** One transaction: committed when `fn` resolves, rolled back when it throws. */
  tx<T>(fn: (q: Queryer) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` holding a lock that every process using this database shares (PostgreSQL
   * advisory lock; SQLite's write lock), so nodes starting together migrate one at a time.
   */
  withMigrationLock<T>(fn: (q: Queryer) => Promise<T>): Promise<T>;
  /**
   * Whether another connection or process committed a change since the last call: SQLite
   * only. Absent where other nodes write the same database all the time (PostgreSQL), so the
   * store keeps no cache that needs it.
   */
  changedElsewhere?(): boolean;
  /** false while the database cannot be reached (PostgreSQL); requests then fail with 503. */
  ready(): boolean;
  close(): Promise<void>;
}

/** `?, ?, ?` for n parameters. */
export const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/** Identity column DDL per engine (SQLite's INTEGER PRIMARY KEY is its rowid). */
export const identityColumn = (engine: Engine): string =>
  engine === 'sqlite' ? 'INTEGER PRIMARY KEY' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY';
