import { Errors } from '../../core/errors.js';
import { Metric } from '../../metering/meter.js';
import { intParam, type RouteDef, timeParam } from '../route.js';
import { z } from 'zod';
import { messageInputs } from '../../core/messages.js';
import { roomInputs } from '../../core/rooms.js';
import { parseInput } from '../../core/validate.js';

/** POST /rooms/:id/typing: the indicator text, if any. */
const typingSchema = z.looseObject({ message: z.unknown().optional() });

/** Rooms, members and room messages. */
export const roomRoutes: RouteDef[] = [
  { method: 'POST', path: '/rooms', summary: 'Create a room', body: roomInputs.create, auth: 'actor', handle: ({ core, actor, body }) => core.rooms.create(actor, body(), false) },
  {
    method: 'POST', path: '/rooms/createAndJoin', summary: 'Create a room, or join it when it exists', body: roomInputs.create, auth: 'actor',
    handle: ({ core, actor, body }) => core.rooms.create(actor, body(), true),
  },
  {
    method: 'GET', path: '/rooms', summary: 'Your rooms (API key: all rooms)', query: { skip: 'rooms to skip', limit: 'page size (0: all)', sort: 'e.g. -lastMessage', q: 'JSON filter: {"members":…,"roomTags":…} with $in/$all', pref: 'JSON filter on your room preference, e.g. {"tags":{"$in":["demo"]}}', updatedAfter: 'only rooms changed after (epoch ms or ISO 8601)', sortUnreadFirst: '1: rooms with unread messages first' }, auth: 'actor',
    handle: ({ core, actor, req }) =>
      core.rooms.list(actor, {
        skip: intParam(req.query, 'skip', 0, 0, 1e9),
        limit: intParam(req.query, 'limit', 0, 0, 10_000),
        sort: req.query.get('sort') ?? undefined,
        q: req.query.get('q') ?? undefined,
        sortUnreadFirst: intParam(req.query, 'sortUnreadFirst', 0, 0, 1) === 1,
        updatedAfter: timeParam(req.query, 'updatedAfter'),
        pref: req.query.get('pref') ?? undefined,
      }),
  },
  {
    method: 'GET', path: '/rooms/ids', summary: 'The ids of your rooms', query: { skip: 'ids to skip', limit: 'page size (0: all)' }, auth: 'actor',
    handle: ({ core, actor, req }) => core.rooms.ids(actor, intParam(req.query, 'skip', 0, 0, 1e9), intParam(req.query, 'limit', 0, 0, 1e9)),
  },
  { method: 'GET', path: '/rooms/:id/exists', summary: 'Whether a room exists (a direct room: only for its members)', auth: 'actor', handle: ({ core, actor, params }) => core.rooms.exists(actor, params.id!) },
  {
    method: 'GET', path: '/rooms/:id/count', summary: 'How many messages the room has, or how many were created or changed after timeInMS', query: { timeInMS: 'count messages created or changed after this time (epoch ms)' }, auth: 'actor',
    handle: ({ core, actor, params, req }) => core.messages.count(actor, params.id!, timeParam(req.query, 'timeInMS')),
  },
  {
    // IMKIT's spelling (room/Room-List-pined-messages.md).
    method: 'GET', path: '/rooms/:id/pined-messages', summary: "The room's pinned message, as a list (one pin per room)", auth: 'actor',
    handle: ({ core, actor, params }) => core.messages.pinnedMessages(actor, params.id!),
  },
  {
    // The same page's request sample uses this path.
    method: 'GET', path: '/rooms/:id/messages/pined-messages', summary: 'Same as /rooms/:id/pined-messages (the path of api-doc\'s request sample)', auth: 'actor',
    handle: ({ core, actor, params }) => core.messages.pinnedMessages(actor, params.id!),
  },
  { method: 'GET', path: '/rooms/quitted', summary: 'Rooms you left or were removed from', auth: 'actor', handle: ({ core, actor }) => core.rooms.quitted(actor) },
  { method: 'GET', path: '/rooms/:id', summary: 'One room', auth: 'actor', handle: ({ core, actor, params }) => core.rooms.get(actor, params.id!) },
  {
    method: 'PUT', path: '/rooms/:id', summary: 'Update a room', body: roomInputs.update, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.update(actor, params.id!, body()),
  },
  { method: 'DELETE', path: '/rooms/:id', summary: 'Delete a room', auth: 'actor', handle: ({ core, actor, params }) => core.rooms.remove(actor, params.id!) },
  { method: 'POST', path: '/rooms/:id/join', summary: 'Join a room', body: null, auth: 'actor', handle: ({ core, actor, params }) => core.rooms.join(actor, params.id!) },
  {
    method: 'POST', path: '/rooms/:id/members', summary: 'Add members', body: roomInputs.addMembers, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.addMembers(actor, params.id!, body()),
  },
  {
    method: 'POST', path: '/rooms/:id/delete/members', summary: 'Remove members', body: roomInputs.removeMembers, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.removeMembers(actor, params.id!, body()),
  },
  {
    method: 'PUT', path: '/rooms/:id/member/:client', summary: "Set a member's role", body: roomInputs.memberProperty, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.setMemberProperty(actor, params.id!, params.client!, body()),
  },
  {
    method: 'POST', path: '/rooms/:id/message', summary: 'Send a message (also recall and edit)', body: messageInputs.send, auth: 'actor', meter: Metric.messagesRest,
    handle: ({ core, actor, params, body }) => core.messages.send(actor, params.id!, body()),
  },
  {
    method: 'GET', path: '/rooms/:id/messages/v3', summary: 'Message history, newest first', query: { limit: '1–1000 (default 20)', beforeMessage: 'page before this message id', afterMessage: 'page after this message id (oldest first)', sortOrder: 'asc or desc' }, auth: 'actor',
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
    method: 'GET', path: '/messages/recent', summary: 'The newest messages across your rooms, newest first', query: { limit: '1–100 (default 20)' }, auth: 'actor',
    handle: ({ core, actor, req }) => core.messages.recent(actor, intParam(req.query, 'limit', 20, 1, 100)),
  },
  {
    method: 'GET', path: '/rooms/:id/messages/:messageId', summary: 'Messages around one message, newest first', query: { before: 'older messages, 0–500 (default 10)', after: 'newer messages, 0–500 (default 10)' }, auth: 'actor',
    handle: ({ core, actor, params, req }) =>
      core.messages.around(actor, params.id!, params.messageId!, { before: intParam(req.query, 'before', 10, 0, 500), after: intParam(req.query, 'after', 10, 0, 500) }),
  },
  {
    method: 'POST', path: '/rooms/:id/typing', summary: 'Typing indicator to the room', body: typingSchema, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.typing(actor, params.id!, parseInput(typingSchema, body()).message),
  },
  {
    method: 'PUT', path: '/rooms/:id/lastRead', summary: 'Mark messages read up to one', body: roomInputs.lastRead, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.rooms.markRead(actor, params.id!, body()),
  },
];
