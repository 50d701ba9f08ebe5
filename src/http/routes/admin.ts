import { authorize } from '../../core/permissions.js';
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
  {
    method: 'GET', path: '/admin/client-key', auth: 'actor',
    handle: async ({ core, actor }) => {
      authorize(actor, 'app.settings');
      const app = await core.apps.getApp(actor.app.id);
      if (!app.clientKey) return { clientKey: null };
      return { clientKey: app.clientKey.token, createdAt: new Date(app.clientKey.createdAt).toISOString(), createdAtMS: app.clientKey.createdAt };
    },
  },
  {
    method: 'POST', path: '/admin/client-key', auth: 'actor',
    handle: async ({ core, actor }) => {
      authorize(actor, 'app.settings');
      const app = await core.apps.generateClientKey(actor.app.id);
      return { clientKey: app.clientKey!.token, createdAtMS: app.clientKey!.createdAt };
    },
  },
  {
    method: 'DELETE', path: '/admin/client-key', auth: 'actor',
    handle: async ({ core, actor }) => {
      authorize(actor, 'app.settings');
      await core.apps.revokeClientKey(actor.app.id);
      return { revoked: true };
    },
  },
  {
    method: 'POST', path: '/messages', auth: 'actor', meter: Metric.messagesRest,
    handle: ({ core, actor, body }) => core.messages.sendAs(actor, body()),
  },
];
