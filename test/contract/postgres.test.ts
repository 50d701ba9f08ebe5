import { afterAll } from 'vitest';
import { PostgresDb } from '../../src/store/sql/postgres.js';
import { SqlStore } from '../../src/store/sql/store.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { sqlStoreChecks } from './sql-store-checks.js';
import { storeContract } from './store-contract.js';

// The machine's PostgreSQL (.ci/run makes sure it runs); every store gets an empty schema of its own.
storeContract('postgres', () => SqlStore.open(new PostgresDb(SHARED_DATABASE_URL, { schema: freshSchema() })));
sqlStoreChecks('postgres', () => {
  const schema = freshSchema();
  return () => new PostgresDb(SHARED_DATABASE_URL, { schema });
});
afterAll(() => dropSchemas());
