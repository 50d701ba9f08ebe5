import { searchInputs } from '../../core/search.js';
import type { RouteDef } from '../route.js';

/** Keyword search over the caller's rooms (`POST /search`). */
export const searchRoutes: RouteDef[] = [
  { method: 'POST', path: '/search', summary: 'Search messages, files and rooms in your rooms', body: searchInputs.search, auth: 'actor', handle: ({ core, actor, body }) => core.search.search(actor, body()) },
];
