import type { RouteDef } from '../route.js';

/** The user's own account: client key + token. */
export const meRoutes: RouteDef[] = [
  { method: 'GET', path: '/me', auth: 'actor', handle: ({ core, actor }) => core.users.me(actor) },
  { method: 'POST', path: '/me', auth: 'actor', handle: ({ core, actor, body }) => core.users.updateMe(actor, body()) },
  {
    method: 'GET', path: '/me/badge', auth: 'actor',
    handle: ({ core, actor, req }) => core.rooms.badge(actor, req.query.getAll('roomTags')),
  },
];
