import { isIP } from 'node:net';
import type { Credentials } from '../core/identity.js';

/** First present header among aliases (names already lower case). */
function header(headers: Record<string, string>, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = headers[name];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** Hostname without port, lower case; X-Forwarded-Host only behind a trusted proxy. */
export function requestHost(headers: Record<string, string>, trustProxy: boolean): string | undefined {
  const raw = (trustProxy ? header(headers, 'x-forwarded-host') : undefined) ?? headers.host;
  if (!raw) return undefined;
  const first = raw.split(',')[0]!.trim().toLowerCase();
  // [::1]:3000 → ::1 ; example.com:3000 → example.com
  if (first.startsWith('[')) return first.slice(1, first.indexOf(']') > 0 ? first.indexOf(']') : undefined);
  const colon = first.lastIndexOf(':');
  return colon > 0 && first.indexOf(':') === colon ? first.slice(0, colon) : first;
}

/**
 * IMKIT credential headers with the spec's aliases: IM-CLIENT-KEY / CLIENT_KEY,
 * IM-Authorization / Authorization, IM-API-KEY / API_KEY (any case).
 */
export function credentialsFromHeaders(headers: Record<string, string>, trustProxy: boolean): Credentials {
  const token = header(headers, 'im-authorization', 'authorization');
  return {
    apiKey: header(headers, 'im-api-key', 'api_key'),
    clientKey: header(headers, 'im-client-key', 'client_key'),
    token: token?.replace(/^Bearer\s+/i, ''),
    host: requestHost(headers, trustProxy),
    origin: headers.origin,
  };
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
