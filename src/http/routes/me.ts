import { Errors } from '../../core/errors.js';
import { credentialsFromHeaders } from '../../credentials.js';
import type { RouteDef } from '../route.js';

/** The user's own account: client key + token. */
export const meRoutes: RouteDef[] = [
  { method: 'GET', path: '/me', auth: 'actor', handle: ({ core, actor }) => core.users.me(actor) },
  { method: 'POST', path: '/me', auth: 'actor', handle: ({ core, actor, body }) => core.users.updateMe(actor, body()) },
  {
    method: 'GET', path: '/me/badge', auth: 'actor',
    handle: ({ core, actor, req }) => core.rooms.badge(actor, req.query.getAll('roomTags')),
  },
  { method: 'POST', path: '/badges/byRoomTags', auth: 'actor', handle: ({ core, actor, body }) => core.rooms.badgesByTags(actor, body()) },
  {
    // IMKIT: the API key, or (sandbox, off unless the operator enables it) the client key alone.
    method: 'POST', path: '/auths/sign/v2', auth: 'public',
    handle: async ({ core, req, body, config, authenticate }) => {
      const creds = credentialsFromHeaders(req.headers, config.trustProxy);
      if (creds.apiKey) return core.users.sandboxSignIn((await authenticate()).app, body());
      if (!config.sandboxSignIn) throw Errors.sandboxDisabled();
      return core.users.sandboxSignIn(await core.identity.authenticateClientKey(creds), body());
    },
  },
];
