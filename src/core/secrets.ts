import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Random secret, base64 as IMKIT's API keys are. */
export const randomBase64 = (bytes = 32): string => randomBytes(bytes).toString('base64');

/** Random url-safe secret for signing keys and ids that travel in URLs. */
export const randomBase64Url = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** sha256 as base64url: how API keys and user tokens are stored (never in clear). */
export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

/**
 * Constant-time comparison of two secrets of any length: both sides are hashed first so the
 * comparison never short-circuits on length or content.
 */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Per-process random part of ids, drawn once (ids are unique, not secret). */
const PROCESS_PART = randomBytes(5).toString('hex');
let counter = randomBytes(3).readUIntBE(0, 3);

/** A request id: unique per process (random part + counter), no entropy draw per request. */
let requests = 0;
export function newRequestId(): string {
  requests = (requests + 1) % Number.MAX_SAFE_INTEGER;
  return `${PROCESS_PART}${requests.toString(36)}`;
}

/**
 * 24 hex characters laid out like the ObjectIds IMKIT clients are used to: seconds, a
 * per-process random part, and a counter. Cheap on the send path (no entropy draw per id).
 */
export function newId(): string {
  counter = (counter + 1) & 0xffffff;
  const time = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return time + PROCESS_PART + counter.toString(16).padStart(6, '0');
}
