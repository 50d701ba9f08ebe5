import pg from 'pg';
import { Errors, isImError } from '../../core/errors.js';
import type { Logger } from '../../observability/logger.js';
import type { Db, Param, Queryer, Row } from './db.js';

export interface PostgresOptions {
  /** Schema holding roomcast's tables (created when missing); lets deployments or test suites share a server. */
  schema?: string;
  poolSize?: number;
  log?: Logger;
}

// int8 (counts, identity columns, epoch ms) as JS numbers: every value we store fits in 2^53.
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** `?` → `$1, $2, …` (the store's SQL never has a `?` inside a literal). */
const numbered = new Map<string, string>();
function toPg(sql: string): string {
  let out = numbered.get(sql);
  if (out === undefined) {
    let n = 0;
    out = sql.replace(/\?/g, () => `$${++n}`);
    if (numbered.size < 10_000) numbered.set(sql, out);
  }
  return out;
}

/** Connection-level failures (server down, restarting, network): the request becomes 503. */
function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code ?? '';
  if (/^(08|57P)/.test(code)) return true; // connection exception, admin shutdown / cannot connect now
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(err.message);
}

/**
 * node-postgres adapter: a pool, one client per transaction. While the server cannot be
 * reached, calls fail at once with STORE_UNAVAILABLE (no queueing behind a dead server); a
 * probe every `probeMs` notices the server is back, and the pool reconnects by itself.
 */
export class PostgresDb implements Db {
  readonly engine = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  private pool: pg.Pool;
  private healthy = true;
  private probe: NodeJS.Timeout | undefined;
  private closed = false;
  readonly schema: string;

  constructor(readonly url: string, private options: PostgresOptions = {}) {
    this.schema = options.schema ?? 'public';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(this.schema)) throw new Error(`invalid schema name '${this.schema}'`);
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 3000,
      // The schema goes in the startup packet: no extra round trip per connection.
      options: `-c search_path=${this.schema}`,
      types,
    });
    // An idle client losing its server must not crash the process: the pool drops it.
    this.pool.on('error', (err) => this.failed(err));
    // Nor one that is checked out (in a transaction) when the server goes: its query rejects too.
    this.pool.on('connect', (client) => client.on('error', (err) => this.failed(err)));
  }

  private failed(err: unknown): void {
    if (!isUnavailable(err) || this.closed) return;
    if (this.healthy) this.options.log?.warn({ err: (err as Error).message }, 'postgres unreachable; requests fail with 503 until it returns');
    this.healthy = false;
    this.probe ??= setInterval(() => void this.check(), 250);
  }
  private async check(): Promise<void> {
    try {
      await this.pool.query('SELECT 1');
      this.healthy = true;
      clearInterval(this.probe);
      this.probe = undefined;
      this.options.log?.info('postgres reachable again');
    } catch {
      // still away; the next tick tries again
    }
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    if (!this.healthy) throw Errors.storeUnavailable();
    try {
      return await operation();
    } catch (err) {
      if (!isImError(err) && isUnavailable(err)) {
        this.failed(err);
        throw Errors.storeUnavailable();
      }
      throw err;
    }
  }

  async all<R extends object = Row>(sql: string, params: readonly Param[] = []): Promise<R[]> {
    return this.guard(async () => (await this.pool.query(toPg(sql), params as Param[])).rows as R[]);
  }
  async run(sql: string, params: readonly Param[] = []): Promise<number> {
    return this.guard(async () => (await this.pool.query(toPg(sql), params as Param[])).rowCount ?? 0);
  }

  private on(client: pg.PoolClient): Queryer {
    return {
      all: async <R extends object = Row>(sql: string, params: readonly Param[] = []) =>
        (await client.query(toPg(sql), params as Param[])).rows as R[],
      run: async (sql, params = []) => (await client.query(toPg(sql), params as Param[])).rowCount ?? 0,
    };
  }

  tx<T>(fn: (q: Queryer) => Promise<T>): Promise<T> {
    return this.guard(async () => {
      const client = await this.pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        const result = await fn(this.on(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
        throw err;
      } finally {
        client.release(broken instanceof Error ? broken : undefined);
      }
    });
  }

  /** A session advisory lock keyed by the schema: nodes of one deployment migrate one at a time. */
  withMigrationLock<T>(fn: (q: Queryer) => Promise<T>): Promise<T> {
    return this.guard(async () => {
      const client = await this.pool.connect();
      const key = `roomcast:${this.schema}`;
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`).catch((err: unknown) => {
          // Two nodes creating it at once: the loser sees a unique violation; the schema exists.
          if ((err as { code?: string }).code !== '23505' && (err as { code?: string }).code !== '42P06') throw err;
        });
        await client.query('SELECT pg_advisory_lock(hashtext($1))', [key]);
        try {
          await client.query('BEGIN');
          const result = await fn(this.on(client));
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]).catch(() => {});
        }
      } finally {
        client.release();
      }
    });
  }

  ready(): boolean {
    return this.healthy;
  }
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.probe);
    await this.pool.end();
  }
}
