import { isIP } from 'node:net';
import type { Credentials } from './core/identity.js';

/**
 * The one place credentials are read from what a client sent, for REST and sockets alike:
 * headers, the upgrade query, the Socket.IO CONNECT `auth` object and `auth2`'s extra object
 * all accept the same names (any case), and a token is always taken without `Bearer `.
 */
export const CREDENTIAL_NAMES = {
  apiKey: ['im-api-key', 'api_key', 'apikey', 'api-key'],
  clientKey: ['im-client-key', 'client_key', 'clientkey', 'client-key'],
  token: ['im-authorization', 'authorization', 'token'],
  deviceId: ['im-device-id', 'deviceid', 'device_id', 'device-id'],
} as const;

export type Bag = Readonly<Record<string, unknown>>;

/** First non-empty string under one of `names` (compared case-insensitively). */
function pick(bag: Bag | undefined, names: readonly string[]): string | undefined {
  if (!bag) return undefined;
  for (const key of Object.keys(bag)) {
    const value = bag[key];
    if (typeof value === 'string' && value !== '' && names.includes(key.toLowerCase())) return value;
  }
  return undefined;
}

/** A token as presented, without the optional `Bearer ` scheme. */
export function normaliseToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const bare = token.replace(/^Bearer\s+/i, '');
  return bare === '' ? undefined : bare;
}

/** Credentials from bags in order of precedence (the first that has a credential wins for it). */
export function credentialsFrom(bags: readonly (Bag | undefined)[]): Credentials & { deviceId?: string } {
  const first = (names: readonly string[]) => {
    for (const bag of bags) {
      const v = pick(bag, names);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  return definedOnly({
    apiKey: first(CREDENTIAL_NAMES.apiKey),
    clientKey: first(CREDENTIAL_NAMES.clientKey),
    token: normaliseToken(first(CREDENTIAL_NAMES.token)),
    deviceId: first(CREDENTIAL_NAMES.deviceId),
  });
}

/** Hostname without port, lower case; X-Forwarded-Host only behind a trusted proxy. */
export function requestHost(headers: Record<string, string>, trustProxy: boolean): string | undefined {
  const raw = (trustProxy ? pick(headers, ['x-forwarded-host']) : undefined) ?? headers.host;
  if (!raw) return undefined;
  const first = raw.split(',')[0]!.trim().toLowerCase();
  // [::1]:3000 → ::1 ; example.com:3000 → example.com
  if (first.startsWith('[')) return first.slice(1, first.indexOf(']') > 0 ? first.indexOf(']') : undefined);
  const colon = first.lastIndexOf(':');
  return colon > 0 && first.indexOf(':') === colon ? first.slice(0, colon) : first;
}

/** First non-empty header under one of `names`: both HTTP stacks hand header names in lower case. */
function header(headers: Record<string, string>, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = Object.hasOwn(headers, name) ? headers[name] : undefined;
    if (value) return value;
  }
  return undefined;
}

/**
 * A REST request's credentials: its headers, plus the host and browser origin it came with.
 * The same names as `credentialsFrom`, looked up directly (this runs on every request).
 */
export function credentialsFromHeaders(headers: Record<string, string>, trustProxy: boolean): Credentials {
  const creds: Credentials = {};
  const apiKey = header(headers, CREDENTIAL_NAMES.apiKey);
  if (apiKey !== undefined) creds.apiKey = apiKey;
  const clientKey = header(headers, CREDENTIAL_NAMES.clientKey);
  if (clientKey !== undefined) creds.clientKey = clientKey;
  const token = normaliseToken(header(headers, CREDENTIAL_NAMES.token));
  if (token !== undefined) creds.token = token;
  const host = requestHost(headers, trustProxy);
  if (host !== undefined) creds.host = host;
  if (headers.origin !== undefined) creds.origin = headers.origin;
  return creds;
}

/** The device a REST request says it comes from (`IM-Device-ID`, client/Me-Logout.md), if any. */
export function deviceIdFromHeaders(headers: Record<string, string>): string | undefined {
  return header(headers, CREDENTIAL_NAMES.deviceId);
}

/** The object without its undefined properties. */
export function definedOnly<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as T;
}

/**
 * The client's address. Behind trusted proxies (`trustProxy`, `trustProxyHops` of them), the
 * X-Forwarded-For entry the nearest of those hops appended: counting from the right, as each
 * proxy appends what it saw. Entries further left were written by the client and are never
 * trusted. Anything that is not an IP address falls back to the peer's own address.
 */
export function forwardedClientAddress(headers: Record<string, string>, remoteAddress: string, trustProxy: boolean, hops: number): string {
  if (!trustProxy) return remoteAddress;
  const entries = (headers['x-forwarded-for'] ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  const candidate = entries[entries.length - hops];
  return candidate !== undefined && isIP(candidate) !== 0 ? candidate : remoteAddress;
}
