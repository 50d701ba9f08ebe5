import type { z } from 'zod';
import { Errors } from './errors.js';

/** Parses untrusted input with a schema; the first problem becomes a 400 INVALID_INPUT naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
  throw Errors.invalidInput(`${field}: ${issue.message}`);
}
