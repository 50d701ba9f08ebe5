import { z } from 'zod';
import { Errors } from './errors.js';
import type { UserCondition } from '../store/store.js';

/**
 * The subset of IMKIT's Mongo `q` on `GET /admin/clients` (api-doc admin/Admin-Client-List-&-Search.md):
 * fields `_id`/`id`, `nickname`, `description`; a value, `{$in: [...]}` or `{$regex, $options}`.
 * A `$regex` is taken only as a literal text with optional `^`, `$` and `.*` around it, matched
 * as plain text: a user-supplied regular expression is never run (no ReDoS). The conditions
 * are answered by the store in SQL (`listUsers`).
 */
const regexSchema = z.strictObject({ $regex: z.string().max(256), $options: z.string().regex(/^[imsx]*$/).optional() });
const valueSchema = z.union([z.string().max(256), z.strictObject({ $in: z.array(z.string().max(256)).max(1000) }), regexSchema]);
const querySchema = z.strictObject({ _id: valueSchema.optional(), id: valueSchema.optional(), nickname: valueSchema.optional(), description: valueSchema.optional() });

const bad = (message: string) => Errors.invalidQuery(message);

/** The conditions `q` sets (all must hold), for the store's `listUsers`; undefined without a filter. */
export function parseUserQuery(q: string | undefined): UserCondition[] | undefined {
  if (q === undefined || q === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(q);
  } catch {
    throw bad('not valid JSON');
  }
  const result = querySchema.safeParse(parsed);
  if (!result.success) throw bad('supported: _id, nickname, description as a value, {$in: [...]} or {$regex: "text"}');
  const conditions: UserCondition[] = [];
  for (const [name, value] of Object.entries(result.data)) {
    if (value === undefined) continue;
    const field = name === '_id' || name === 'id' ? 'id' : name === 'nickname' ? 'nickname' : 'description';
    conditions.push({ field, ...condition(value) });
  }
  return conditions;
}

function condition(value: z.infer<typeof valueSchema>): Omit<UserCondition, 'field'> {
  if (typeof value === 'string') return { oneOf: [value] };
  if ('$in' in value) return { oneOf: value.$in };
  const literal = literalPattern(value.$regex);
  const foldCase = value.$options?.includes('i') ?? false;
  const at = literal.start && literal.end ? 'whole' : literal.start ? 'start' : literal.end ? 'end' : 'anywhere';
  return { text: { value: foldCase ? literal.text.toLowerCase() : literal.text, at, foldCase } };
}

/** `^?(.*)?text(.*)?$?` with `text` free of regex metacharacters (a `\` escapes one). */
function literalPattern(source: string): { text: string; start: boolean; end: boolean } {
  let s = source;
  let start = false;
  let end = false;
  if (s.startsWith('^')) [s, start] = [s.slice(1), true];
  if (s.endsWith('$') && !s.endsWith('\\$')) [s, end] = [s.slice(0, -1), true];
  if (s.startsWith('.*')) [s, start] = [s.slice(2), false];
  if (s.endsWith('.*') && !s.endsWith('\\.*')) [s, end] = [s.slice(0, -2), false];
  let text = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) text += s[++i];
    else if ('.*+?()[]{}|^$'.includes(c)) throw bad(`$regex '${source}': only literal text, optionally with ^, $ or .* around it, is supported`);
    else text += c;
  }
  return { text, start, end };
}
