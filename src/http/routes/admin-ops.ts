import { batchInputs } from '../../core/batch.js';
import { groupInputs } from '../../core/groups.js';
import { configInputs } from '../../core/app-config.js';
import { userInputs } from '../../core/users.js';
import { Metric } from '../../metering/meter.js';
import { intParam, type RouteDef, timeParam } from '../route.js';

/** API-key operations of IMKIT's client-key document: batch send, cross-room history, list upsert, user groups, runtime config. */
export const adminOpRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/messages/batch', summary: 'Send one message to many rooms or receivers (batch)', body: batchInputs.send, auth: 'actor', meter: Metric.messagesRest,
    handle: ({ core, actor, body }) => core.batches.batch(actor, body()),
  },
  {
    method: 'GET', path: '/messages/batch', summary: "A batch's messages (batchID)", auth: 'actor',
    handle: ({ core, actor, req }) => core.batches.batchMessages(actor, req.query.get('batchID') ?? undefined),
  },
  {
    method: 'GET', path: '/admin/messages', summary: 'Messages across rooms in a time window (API key)', auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.batches.adminList(actor, {
        limit: intParam(req.query, 'limit', 100, 1, 1000),
        from: timeParam(req.query, 'startDate'),
        to: timeParam(req.query, 'endDate'),
      }),
  },
  { method: 'POST', path: '/admin/clients/list', summary: 'Create or update many users (no tokens)', body: userInputs.upsertMany, auth: 'actor', handle: ({ core, actor, body }) => core.users.upsertMany(actor, body()) },
  { method: 'POST', path: '/admin/groups', summary: 'Create or update a user group', body: groupInputs.upsert, auth: 'actor', handle: ({ core, actor, body }) => core.groups.upsert(actor, body()) },
  {
    method: 'GET', path: '/admin/groups', summary: 'List user groups', auth: 'actor',
    handle: ({ core, actor, req }) => core.groups.list(actor, intParam(req.query, 'limit', 100, 1, 1000)),
  },
  { method: 'GET', path: '/config', summary: "The application's runtime configuration", auth: 'actor', handle: ({ core, actor }) => core.config.get(actor) },
  { method: 'POST', path: '/config', summary: 'Set configuration entries (censorship words, announcement, flags)', body: configInputs.update, auth: 'actor', handle: ({ core, actor, body }) => core.config.update(actor, body()) },
  { method: 'DELETE', path: '/config/:key', summary: 'Remove a configuration entry', auth: 'actor', handle: ({ core, actor, params }) => core.config.remove(actor, params.key!) },
];
