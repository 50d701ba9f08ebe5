import type { RouteDef } from '../route.js';

/** Keyword search over the caller's rooms (`POST /search`). */
export const searchRoutes: RouteDef[] = [
  { method: 'POST', path: '/search', auth: 'actor', handle: ({ core, actor, body }) => core.search.search(actor, body()) },
];
