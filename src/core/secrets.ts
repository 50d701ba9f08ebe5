import { createHash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';

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

/** Random bytes drawn in blocks: one entropy call per 512 ids keeps the send path cheap. */
const POOL = Buffer.alloc(12 * 512);
let poolAt = POOL.length;

/** `bytes` random bytes from the pool, as hex. */
function randomHex(bytes: number): string {
  if (poolAt + bytes > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const hex = POOL.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return hex;
}

/**
 * 24 hex characters, the length of the ObjectIds IMKIT clients are used to, all 96 bits
 * random: an id cannot be guessed (private rooms, messages) nor claimed ahead of time.
 */
export function newId(): string {
  return randomHex(12);
}

/**
 * A message id: 24 hex characters as `newId`, the first 12 the creation time in ms, the last
 * 12 (48 bits) random. Still not guessable, but ids made close in time sort together, so each
 * insert into the store's unique id index lands on its last pages instead of a random leaf: a
 * group commit writes a few pages of that index instead of about one per message.
 */
export function newMessageId(now = Date.now()): string {
  return now.toString(16).padStart(12, '0').slice(-12) + randomHex(6);
}
