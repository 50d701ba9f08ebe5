import { Errors, type ImError } from './errors.js';

/**
 * Limits on untrusted data, checked where it enters (REST bodies, socket event arguments,
 * upload fields) before anything else looks at it. The values come from src/config.ts.
 */
export interface InputLimits {
  maxJsonDepth: number;
  maxJsonArrayLength: number;
  maxJsonObjectKeys: number;
  maxStringLength: number;
}

/** The defaults of src/config.ts, for code built without a configuration (tests of one service). */
export const DEFAULT_INPUT_LIMITS: InputLimits = {
  maxJsonDepth: 32,
  maxJsonArrayLength: 1000,
  maxJsonObjectKeys: 1000,
  maxStringLength: 100_000,
};

/**
 * The first limit `value` breaks, or undefined. Iterative (a deep value cannot overflow the
 * stack here), and it stops at the first problem, so its cost is bounded by the input's size.
 * Every value that passes can be JSON-encoded and copied recursively without a RangeError.
 */
export function jsonLimitError(value: unknown, limits: InputLimits): ImError | undefined {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > limits.maxStringLength) return Errors.inputLimit('STRING_TOO_LONG', `A string is longer than ${limits.maxStringLength} characters`);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxJsonDepth) return Errors.inputLimit('JSON_TOO_DEEP', `The JSON is nested deeper than ${limits.maxJsonDepth} levels`);
    if (Array.isArray(v)) {
      if (v.length > limits.maxJsonArrayLength) return Errors.inputLimit('ARRAY_TOO_LONG', `An array has more than ${limits.maxJsonArrayLength} elements`);
      for (const item of v) stack.push({ v: item, depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(v);
    if (keys.length > limits.maxJsonObjectKeys) return Errors.inputLimit('TOO_MANY_FIELDS', `An object has more than ${limits.maxJsonObjectKeys} fields`);
    for (const key of keys) {
      if (key.length > limits.maxStringLength) return Errors.inputLimit('STRING_TOO_LONG', `A field name is longer than ${limits.maxStringLength} characters`);
      stack.push({ v: (v as Record<string, unknown>)[key], depth: depth + 1 });
    }
  }
  return undefined;
}

/** Throws the refusal for the first limit `value` breaks. */
export function checkJsonLimits(value: unknown, limits: InputLimits): void {
  const error = jsonLimitError(value, limits);
  if (error) throw error;
}

/**
 * The documented character set of user and room ids (README: Ids): letters, digits and
 * `_ . @ : + = -`, 1-128 characters, and never a name `Object.prototype` already owns.
 * Direct rooms use `dm:`-prefixed ids that clients may not choose (see rooms.ts).
 */
const ID_PATTERN = /^[A-Za-z0-9_.@:+=-]{1,128}$/;
const RESERVED_IDS = new Set(['__proto__', 'constructor', 'prototype']);

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id) && !RESERVED_IDS.has(id) && !(id in Object.prototype);
}

/** The limits services enforce beyond the shape of JSON (quotas, sizes, page budgets). */
export interface ServiceLimits extends InputLimits {
  /** A message record's JSON, as stored. */
  maxMessageBytes: number;
  /** Custom fields on one user profile. */
  maxCustomFields: number;
  /** Messages one user may send per minute (per node). */
  messagesPerMinutePerUser: number;
  /** Bytes one user may upload per hour (per node). */
  uploadBytesPerHourPerUser: number;
  /** A history page stops growing once its messages' JSON passes this many bytes. */
  maxPageBytes: number;
}

export const DEFAULT_SERVICE_LIMITS: ServiceLimits = {
  ...DEFAULT_INPUT_LIMITS,
  maxMessageBytes: 64 * 1024,
  maxCustomFields: 64,
  messagesPerMinutePerUser: 600,
  uploadBytesPerHourPerUser: 1024 * 1024 * 1024,
  maxPageBytes: 4 * 1024 * 1024,
};

/**
 * JSON of a record about to be stored, or the refusal: encoding once before storing means
 * nothing stored can fail to encode later (in a view, on the bus, in another node's callback).
 */
export function encodeForStore(value: unknown, maxBytes: number): string {
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw Errors.inputLimit('JSON_TOO_DEEP', 'The value cannot be encoded as JSON');
  }
  if (Buffer.byteLength(json) > maxBytes) throw Errors.messageTooLarge(maxBytes);
  return json;
}
