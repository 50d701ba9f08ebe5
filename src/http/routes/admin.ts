import { Metric } from '../../metering/meter.js';
import { intParam, type RouteDef } from '../route.js';

/** What the API key (the application's administrator) manages: users, tokens, the client key. */
export const adminRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/admin/clients', auth: 'actor',
    handle: ({ core, actor, body }) => core.users.upsert(actor, body()),
  },
  {
    method: 'GET', path: '/admin/clients', auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.users.list(actor, intParam(req.query, 'skip', 0, 0, 1e9), intParam(req.query, 'limit', 50, 1, 1000), req.query.get('q') ?? undefined),
  },
  {
    method: 'GET', path: '/admin/clients/:id', auth: 'actor',
    handle: ({ core, actor, params }) => core.users.get(actor, params.id!),
  },
  {
    method: 'DELETE', path: '/admin/clients/:id', auth: 'actor',
    handle: async ({ core, actor, params }) => {
      await core.users.remove(actor, params.id!, (roomId) =>
        core.rooms.removeMembers(actor, roomId, { members: [params.id!] }).then(() => undefined),
      );
      return { deleted: params.id };
    },
  },
  {
    method: 'PUT', path: '/admin/clients/:id/token', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.users.setToken(actor, params.id!, body()),
  },
  {
    method: 'DELETE', path: '/admin/clients/:id/token', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.users.revokeTokens(actor, params.id!, body()),
  },
  { method: 'GET', path: '/admin/client-key', auth: 'actor', handle: ({ core, actor }) => core.apps.clientKeyOf(actor) },
  { method: 'POST', path: '/admin/client-key', auth: 'actor', handle: ({ core, actor }) => core.apps.newClientKey(actor) },
  { method: 'DELETE', path: '/admin/client-key', auth: 'actor', handle: ({ core, actor }) => core.apps.revokeClientKeyOf(actor) },
  {
    method: 'POST', path: '/messages', auth: 'actor', meter: Metric.messagesRest,
    handle: ({ core, actor, body }) => core.messages.sendAs(actor, body()),
  },
];
