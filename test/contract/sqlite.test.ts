import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { SqliteDb } from '../../src/store/sql/sqlite.js';
import { SqlStore } from '../../src/store/sql/store.js';
import { sqlStoreChecks } from './sql-store-checks.js';
import { storeContract } from './store-contract.js';

// The contract on SQLite in memory (same SQL and engine as the embedded default's file);
// the SQL checks on files, as the embedded default runs (WAL, synchronous=NORMAL).
storeContract('sqlite', () => SqlStore.open(new SqliteDb(':memory:')));

const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-sqlite-'));
let n = 0;
sqlStoreChecks('sqlite', () => {
  const file = path.join(dir, `db${++n}.sqlite`);
  return () => new SqliteDb(file);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
