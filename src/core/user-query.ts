import { z } from 'zod';
import { Errors } from './errors.js';
import type { UserRecord } from './models.js';

/**
 * The subset of IMKIT's Mongo `q` on `GET /admin/clients` (api-doc admin/Admin-Client-List-&-Search.md):
 * fields `_id`/`id`, `nickname`, `description`; a value, `{$in: [...]}` or `{$regex, $options}`.
 * A `$regex` is taken only as a literal text with optional `^`, `$` and `.*` around it, matched
 * as plain text: a user-supplied regular expression is never run (no ReDoS).
 */
const regexSchema = z.strictObject({ $regex: z.string().max(256), $options: z.string().regex(/^[imsx]*$/).optional() });
const valueSchema = z.union([z.string().max(256), z.strictObject({ $in: z.array(z.string().max(256)).max(1000) }), regexSchema]);
const querySchema = z.strictObject({ _id: valueSchema.optional(), id: valueSchema.optional(), nickname: valueSchema.optional(), description: valueSchema.optional() });

export type UserPredicate = (user: UserRecord) => boolean;

const bad = (message: string) => Errors.invalidQuery(message);

export function parseUserQuery(q: string | undefined): UserPredicate | undefined {
  if (q === undefined || q === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(q);
  } catch {
    throw bad('not valid JSON');
  }
  const result = querySchema.safeParse(parsed);
  if (!result.success) throw bad('supported: _id, nickname, description as a value, {$in: [...]} or {$regex: "text"}');
  const tests: UserPredicate[] = [];
  for (const [field, value] of Object.entries(result.data)) {
    if (value === undefined) continue;
    const read = (u: UserRecord): string | undefined => (field === '_id' || field === 'id' ? u.id : field === 'nickname' ? (u.nickname ?? u.id) : u.description);
    const match = matcher(value);
    tests.push((u) => match(read(u)));
  }
  return (u) => tests.every((t) => t(u));
}

function matcher(value: z.infer<typeof valueSchema>): (text: string | undefined) => boolean {
  if (typeof value === 'string') return (text) => text === value;
  if ('$in' in value) return (text) => text !== undefined && value.$in.includes(text);
  const literal = literalPattern(value.$regex);
  const fold = value.$options?.includes('i') ?? false;
  const needle = fold ? literal.text.toLowerCase() : literal.text;
  return (text) => {
    if (text === undefined) return false;
    const hay = fold ? text.toLowerCase() : text;
    if (literal.start && literal.end) return hay === needle;
    if (literal.start) return hay.startsWith(needle);
    if (literal.end) return hay.endsWith(needle);
    return hay.includes(needle);
  };
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
