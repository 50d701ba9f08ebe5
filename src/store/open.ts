import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import { PostgresDb } from './sql/postgres.js';
import { SqliteDb } from './sql/sqlite.js';
import { SqlStore } from './sql/store.js';

export interface OpenedStore {
  store: SqlStore;
  /** Where the data lives, for the banner and logs (never a password). */
  location: string;
  engine: 'sqlite' | 'postgres';
}

/** The URL without its credentials. */
export function describeDatabaseUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//').replace(/\?.*$/, '');
}

/**
 * The store the configuration names: PostgreSQL when ROOMCAST_DATABASE_URL is set,
 * otherwise the SQLite file at ROOMCAST_DATABASE_PATH (`:memory:` keeps nothing).
 * Cluster mode (ROOMCAST_REDIS_URL) needs the shared database: nodes on files of their own
 * would each see different data.
 */
export async function openStore(config: Config, log: Logger): Promise<OpenedStore> {
  if (config.databaseUrl) {
    const db = new PostgresDb(config.databaseUrl, { schema: config.databaseSchema, poolSize: config.databasePoolSize, log });
    const store = await SqlStore.open(db);
    const location = `${describeDatabaseUrl(config.databaseUrl)} (schema ${config.databaseSchema})`;
    log.info({ database: location }, 'data in postgresql');
    return { store, location, engine: 'postgres' };
  }
  if (config.redisUrl) {
    throw new Error('cluster mode (ROOMCAST_REDIS_URL) needs ROOMCAST_DATABASE_URL=postgres://… so that every node shares one database');
  }
  const file = config.databasePath === ':memory:' ? ':memory:' : path.resolve(config.databasePath);
  const store = await SqlStore.open(new SqliteDb(file, { synchronous: config.sqliteSynchronous }));
  const location = file === ':memory:' ? 'memory (nothing is kept after exit)' : file;
  log.info({ database: location, synchronous: config.sqliteSynchronous }, 'data in sqlite');
  return { store, location, engine: 'sqlite' };
}
