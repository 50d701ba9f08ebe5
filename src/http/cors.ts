/** CORS, in one place: REST answers, long-polling answers and every refusal carry the same headers. */

export const CORS_ALLOW_HEADERS =
  'IM-Authorization, IM-Client-Key, IM-API-KEY, IM-Device-ID, IM-CLIENT-ID, x-timezone, accept-language, content-type, Authorization';

/** The headers a response to a request from `origin` needs, given the allowed origins (`*` = any). */
export function corsHeaders(allowed: readonly string[], origin: string | undefined): Record<string, string> {
  if (allowed.includes('*')) return { 'access-control-allow-origin': '*' };
  if (origin && allowed.includes(origin)) return { 'access-control-allow-origin': origin, vary: 'Origin' };
  return {};
}
