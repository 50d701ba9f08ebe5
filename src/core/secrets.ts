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

/** 24 hex characters like the ObjectIds IMKIT clients are used to: time prefix + randomness. */
export function newId(): string {
  const time = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return time + randomBytes(8).toString('hex');
}
