/** CORS, in one place: REST answers, long-polling answers and every refusal carry the same headers. */

export const CORS_ALLOW_HEADERS =
  'IM-Authorization, IM-Client-Key, IM-API-KEY, IM-Device-ID, IM-CLIENT-ID, x-timezone, accept-language, content-type, Authorization';

/**
 * The headers a response to a request from `origin` needs, given the allowed origins (`*` = any).
 * `credentials` (the Engine.IO path) names the origin and allows credentials, so a browser client
 * with `withCredentials: true` keeps a balancer's sticky-session cookie across origins; roomcast
 * itself never authenticates by cookie.
 */
export function corsHeaders(allowed: readonly string[], origin: string | undefined, credentials = false): Record<string, string> {
  const permitted = origin !== undefined && (allowed.includes('*') || allowed.includes(origin));
  if (credentials && permitted) {
    return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
  }
  if (allowed.includes('*')) return { 'access-control-allow-origin': '*' };
  if (permitted) return { 'access-control-allow-origin': origin, vary: 'Origin' };
  return {};
}
