import type { UserCondition, UserFilter } from '../store.js';
import { type Engine, marks, type Param } from './db.js';

/**
 * `listUsers`' filter as SQL over the `users` row: ` AND …` to append to `WHERE app = ?`, and
 * its parameters. Id conditions use the primary key; profile fields are read from the document
 * (`json_extract` / `->>`). Case folding is full Unicode on both engines: SQLite's own `lower`
 * folds ASCII only, so the adapter registers `unicode_lower` (JS `toLowerCase`); PostgreSQL's
 * `lower` follows the database's locale (a `C`-collated database folds ASCII only).
 */
export function userFilterSql(engine: Engine, filter: UserFilter | undefined): { sql: string; params: Param[] } {
  if (!filter) return { sql: '', params: [] };
  const parts: string[] = [];
  const params: Param[] = [];
  for (const c of filter.all) {
    const [sql, p] = condition(engine, c);
    parts.push(sql);
    params.push(...p);
  }
  if (filter.any && filter.any.length > 0) {
    const any = filter.any.map((c) => condition(engine, c));
    parts.push(`(${any.map(([sql]) => sql).join(' OR ')})`);
    for (const [, p] of any) params.push(...p);
  }
  return { sql: parts.map((p) => ` AND ${p}`).join(''), params };
}

function column(engine: Engine, field: UserCondition['field']): string {
  if (field === 'id') return 'id';
  const json = engine === 'sqlite' ? `json_extract(doc, '$.${field}')` : `(CAST(doc AS json) ->> '${field}')`;
  return field === 'nickname' ? `COALESCE(${json}, id)` : json;
}

function condition(engine: Engine, c: UserCondition): [string, Param[]] {
  const col = column(engine, c.field);
  const sql: string[] = [];
  const params: Param[] = [];
  if (c.oneOf) {
    sql.push(c.oneOf.length === 0 ? '1 = 0' : `${col} IN (${marks(c.oneOf.length)})`);
    params.push(...c.oneOf);
  }
  if (c.text) {
    const { value, at, foldCase } = c.text;
    const x = foldCase ? `${engine === 'sqlite' ? 'unicode_lower' : 'lower'}(${col})` : col;
    // Lengths in characters (code points), as both engines' length() and substr() count.
    const length = [...value].length;
    if (at === 'whole') sql.push(`${x} = ?`), params.push(value);
    else if (at === 'start') sql.push(`substr(${x}, 1, ?) = ?`), params.push(length, value);
    else if (at === 'end') sql.push(`substr(${x}, length(${x}) - ? + 1) = ?`), params.push(length, value);
    else sql.push(`${engine === 'sqlite' ? 'instr' : 'strpos'}(${x}, ?) > 0`), params.push(value);
  }
  return [sql.length === 0 ? '1 = 1' : sql.join(' AND '), params];
}
