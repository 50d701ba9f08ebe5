import { z } from 'zod';
import { Errors } from './errors.js';

/**
 * `GET /rooms?pref=`: rooms filtered by the caller's own room preference, in the Mongo-like
 * syntax IMKIT documents (room/Room-Filter.md, room/Room-List-Rooms.md: `{"tags": "some-tag"}`,
 * `{"tags": {"$in": ["demo"]}}`). A value matches a preference field that equals it or, when
 * the field is an array (tags), contains it.
 */
const scalar = z.union([z.string().max(256), z.number(), z.boolean(), z.null()]);
const condition = z.union([
  scalar,
  z.strictObject({ $in: z.array(scalar).max(100) }),
  z.strictObject({ $all: z.array(scalar).max(100) }),
  z.strictObject({ $ne: scalar }),
  z.strictObject({ $exists: z.boolean() }),
]);
const prefFilterSchema = z.record(z.string().min(1).max(128), condition).refine((f) => Object.keys(f).length <= 20, 'at most 20 fields');

export type PrefFilter = z.infer<typeof prefFilterSchema>;
type Scalar = z.infer<typeof scalar>;
type Condition = z.infer<typeof condition>;

/** The `pref` query parameter, parsed; undefined when absent. INVALID_QUERY names what is wrong. */
export function parsePrefFilter(raw: string | undefined): PrefFilter | undefined {
  if (raw === undefined || raw === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw Errors.invalidQuery('not valid JSON', 'pref');
  }
  const result = prefFilterSchema.safeParse(parsed);
  if (!result.success) {
    throw Errors.invalidQuery('an object of preference fields, each a value or {$in|$all: [values]}, {$ne: value}, {$exists: bool}', 'pref');
  }
  return result.data;
}

/** Whether a room preference (absent: `{}`) satisfies every field of the filter. */
export function prefMatches(pref: Record<string, unknown> | undefined, filter: PrefFilter): boolean {
  for (const [field, cond] of Object.entries(filter)) {
    const value = pref && Object.hasOwn(pref, field) ? pref[field] : undefined;
    if (!fieldMatches(value, cond)) return false;
  }
  return true;
}

function fieldMatches(value: unknown, cond: Condition): boolean {
  if (cond === null || typeof cond !== 'object') return has(value, cond);
  if ('$in' in cond) return cond.$in.some((v) => has(value, v));
  if ('$all' in cond) return cond.$all.every((v) => has(value, v));
  if ('$ne' in cond) return !has(value, cond.$ne);
  return (value !== undefined) === cond.$exists;
}

/** Mongo's equality on a field: equal, or (array field) one of its elements is equal. A null matches a missing field. */
function has(value: unknown, wanted: Scalar): boolean {
  if (wanted === null && (value === undefined || value === null)) return true;
  if (Array.isArray(value)) return value.some((v) => v === wanted);
  return value === wanted;
}
