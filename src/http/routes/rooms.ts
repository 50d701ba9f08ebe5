import { Errors } from '../../core/errors.js';
import { Metric } from '../../metering/meter.js';
import { intParam, type RouteDef, timeParam } from '../route.js';

/** Rooms, members and room messages. */
export const roomRoutes: RouteDef[] = [
  { method: 'POST', path: '/rooms', auth: 'actor', handle: ({ core, actor, body }) => core.rooms.create(actor, body(), false) },
  {
    method: 'POST', path: '/rooms/createAndJoin', auth: 'actor',
    handle: ({ core, actor, body }) => core.rooms.create(actor, body(), true),
  },
  {
    method: 'GET', path: '/rooms', auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.rooms.list(actor, {
        skip: intParam(req.query, 'skip', 0, 0, 1e9),
        limit: intParam(req.query, 'limit', 0, 0, 10_000),
        sort: req.query.get('sort') ?? undefined,
        q: req.query.get('q') ?? undefined,
        sortUnreadFirst: intParam(req.query, 'sortUnreadFirst', 0, 0, 1) === 1,
        updatedAfter: timeParam(req.query, 'updatedAfter'),
      }),
  },
  { method: 'GET', path: '/rooms/:id', auth: 'actor', handle: ({ core, actor, params }) => core.rooms.get(actor, params.id!) },
  {
    method: 'PUT', path: '/rooms/:id', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.update(actor, params.id!, body()),
  },
  { method: 'DELETE', path: '/rooms/:id', auth: 'actor', handle: ({ core, actor, params }) => core.rooms.remove(actor, params.id!) },
  { method: 'POST', path: '/rooms/:id/join', auth: 'actor', handle: ({ core, actor, params }) => core.rooms.join(actor, params.id!) },
  {
    method: 'POST', path: '/rooms/:id/members', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.addMembers(actor, params.id!, body()),
  },
  {
    method: 'POST', path: '/rooms/:id/delete/members', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.removeMembers(actor, params.id!, body()),
  },
  {
    method: 'PUT', path: '/rooms/:id/member/:client', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.setMemberProperty(actor, params.id!, params.client!, body()),
  },
  {
    method: 'POST', path: '/rooms/:id/message', auth: 'actor', meter: Metric.messagesRest,
    handle: ({ core, actor, params, body }) => core.messages.send(actor, params.id!, body()),
  },
  {
    method: 'GET', path: '/rooms/:id/messages/v3', auth: 'actor',
    handle: ({ core, actor, params, req }) => {
      const sortOrder = req.query.get('sortOrder') ?? undefined;
      if (sortOrder !== undefined && sortOrder !== 'asc' && sortOrder !== 'desc') {
        throw Errors.invalidInput('sortOrder: asc or desc');
      }
      return core.messages.history(actor, params.id!, {
        limit: intParam(req.query, 'limit', 20, 1, 1000),
        beforeMessage: req.query.get('beforeMessage') || undefined,
        afterMessage: req.query.get('afterMessage') || undefined,
        sortOrder,
      });
    },
  },
  {
    method: 'POST', path: '/rooms/:id/typing', auth: 'actor',
    handle: ({ core, actor, params, body }) => {
      const b = body();
      return core.rooms.typing(actor, params.id!, typeof b === 'object' && b !== null ? (b as { message?: unknown }).message : undefined);
    },
  },
  {
    method: 'PUT', path: '/rooms/:id/lastRead', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.markRead(actor, params.id!, body()),
  },
];
