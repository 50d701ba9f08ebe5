import { messageActionInputs } from '../../core/message-actions.js';
import type { RouteDef } from '../route.js';

/** Reactions, hiding, and "delete for me" (bodies as the Vue SDK sends them). */
export const messageActionRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/messages/:id/reaction', summary: 'React to a message', body: messageActionInputs.react, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.messageActions.react(actor, params.id!, body()),
  },
  {
    method: 'DELETE', path: '/messages/:id/reaction', summary: 'Remove your reaction', auth: 'actor',
    handle: ({ core, actor, params, req }) => core.messageActions.unreact(actor, params.id!, req.query.get('reaction') ?? undefined),
  },
  {
    method: 'POST', path: '/messages/:id/hidden', summary: 'Hide a message from the other members', body: null, auth: 'actor',
    handle: ({ core, actor, params }) => core.messageActions.setHidden(actor, params.id!, true),
  },
  {
    method: 'DELETE', path: '/messages/:id/hidden', summary: 'Unhide a message', auth: 'actor',
    handle: ({ core, actor, params }) => core.messageActions.setHidden(actor, params.id!, false),
  },
  {
    method: 'POST', path: '/messages/hide-by-sender-in-room', summary: "Hide all of a sender's messages in a room", body: messageActionInputs.senderInRoom, auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.setSenderHidden(actor, body(), true),
  },
  {
    method: 'POST', path: '/messages/unhide-by-sender-in-room', summary: "Unhide a sender's messages in a room", body: messageActionInputs.senderInRoom, auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.setSenderHidden(actor, body(), false),
  },
  {
    method: 'POST', path: '/messages/user-delete', summary: 'Delete messages for yourself only', body: messageActionInputs.userDelete, auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.deleteForMe(actor, body()),
  },
  {
    method: 'POST', path: '/messages/user-delete/all-in-room', summary: "Delete a room's whole history for yourself only", body: messageActionInputs.room, auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.deleteAllForMe(actor, body()),
  },
  {
    method: 'GET', path: '/messages/user-delete', summary: 'Ids of the messages you deleted for yourself', auth: 'actor',
    handle: ({ core, actor, req }) => core.messageActions.listDeletedForMe(actor, req.query.get('room') ?? undefined),
  },
];
