import { Metric } from '../../metering/meter.js';
import { intParam, type RouteDef } from '../route.js';
import { messageInputs } from '../../core/messages.js';
import { userInputs } from '../../core/users.js';
import { deliveryInputs } from '../../core/delivery.js';

/** What the API key (the application's administrator) manages: users, tokens, the client key. */
export const adminRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/admin/clients', summary: 'Create or update a user; optionally issue or set a token', body: userInputs.upsert, auth: 'actor',
    handle: ({ core, actor, body }) => core.users.upsert(actor, body()),
  },
  {
    method: 'GET', path: '/admin/clients', summary: 'List or search users', auth: 'actor',
    query: {
      skip: 'users to skip (default 0)',
      limit: 'page size, 1–1000 (default 50)',
      q: "IMKIT's user filter (a JSON condition on _id/nickname; regexes matched as literal text)",
      search: 'only users whose id or nickname contains this (any case)',
    },
    handle: ({ core, actor, req }) =>
      core.users.list(actor, intParam(req.query, 'skip', 0, 0, 1e9), intParam(req.query, 'limit', 50, 1, 1000), {
        q: req.query.get('q') ?? undefined,
        search: req.query.get('search')?.trim() || undefined,
      }),
  },
  {
    method: 'GET', path: '/admin/clients/:id/tokens', summary: "A user's tokens: when issued, when they expire (never the tokens)", auth: 'actor',
    handle: ({ core, actor, params }) => core.users.tokenRecords(actor, params.id!),
  },
  {
    method: 'GET', path: '/admin/clients/:id', summary: 'One user', auth: 'actor',
    handle: ({ core, actor, params }) => core.users.get(actor, params.id!),
  },
  {
    method: 'DELETE', path: '/admin/clients/:id', summary: 'Delete a user (leaves their rooms)', auth: 'actor',
    handle: async ({ core, actor, params }) => {
      await core.users.remove(actor, params.id!, (roomId) =>
        core.rooms.removeMembers(actor, roomId, { members: [params.id!] }).then(() => undefined),
      );
      return { deleted: params.id };
    },
  },
  {
    method: 'PUT', path: '/admin/clients/:id/token', summary: 'Bind a token chosen by your backend to a user', body: userInputs.setToken, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.users.setToken(actor, params.id!, body()),
  },
  {
    method: 'DELETE', path: '/admin/clients/:id/token', summary: "Revoke one token (body.token) or all of a user's tokens; their sockets are cut", body: userInputs.revoke, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.users.revokeTokens(actor, params.id!, body()),
  },
  { method: 'GET', path: '/admin/client-key', summary: "The application's client key", auth: 'actor', handle: ({ core, actor }) => core.apps.clientKeyOf(actor) },
  // Offline delivery: webhook and push settings, the outbox's recent deliveries, custom pushes.
  {
    method: 'GET', path: '/admin/delivery', summary: 'Webhook and push settings (private keys left out) and the webhook signing secret', auth: 'actor',
    handle: ({ core, actor }) => core.delivery.getSettings(actor),
  },
  {
    method: 'PUT', path: '/admin/delivery', summary: 'Change webhook and push settings (null removes one)', body: deliveryInputs.settings, auth: 'actor',
    handle: ({ core, actor, body }) => core.delivery.updateSettings(actor, body()),
  },
  {
    method: 'GET', path: '/admin/deliveries', summary: 'Recent webhook and push deliveries: status, attempts, last error', auth: 'actor',
    query: { limit: 'how many, newest first (1-500, default 50)' },
    handle: ({ core, actor, req }) => core.delivery.deliveries(actor, intParam(req.query, 'limit', 50, 1, 500)),
  },
  {
    method: 'POST', path: '/push/push2clients', summary: 'Send a custom push notification to users, online or not', body: deliveryInputs.push2clients, auth: 'actor',
    handle: ({ core, actor, body, config }) => core.delivery.push2clients(actor, body(), config.pushBatchSize),
  },
  {
    method: 'POST', path: '/admin/client-key', summary: 'Generate a client key (409 while one is active)', body: null, auth: 'actor',
    handle: ({ core, actor }) => core.apps.newClientKey(actor) },
  {
    method: 'DELETE', path: '/admin/client-key', summary: 'Revoke the client key; sockets using it are cut', auth: 'actor',
    handle: ({ core, actor }) => core.apps.revokeClientKeyOf(actor) },
  {
    method: 'POST', path: '/messages', summary: 'Send a message as any member (API key)', body: messageInputs.sendAs, auth: 'actor', meter: Metric.messagesRest,
    handle: ({ core, actor, body }) => core.messages.sendAs(actor, body()),
  },
];
