import type { RouteDef } from '../route.js';

/** Reactions, hiding, and "delete for me" (bodies as the Vue SDK sends them). */
export const messageActionRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/messages/:id/reaction', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.messageActions.react(actor, params.id!, body()),
  },
  {
    method: 'DELETE', path: '/messages/:id/reaction', auth: 'actor',
    handle: ({ core, actor, params, req }) => core.messageActions.unreact(actor, params.id!, req.query.get('reaction') ?? undefined),
  },
  {
    method: 'POST', path: '/messages/:id/hidden', auth: 'actor',
    handle: ({ core, actor, params }) => core.messageActions.setHidden(actor, params.id!, true),
  },
  {
    method: 'DELETE', path: '/messages/:id/hidden', auth: 'actor',
    handle: ({ core, actor, params }) => core.messageActions.setHidden(actor, params.id!, false),
  },
  {
    method: 'POST', path: '/messages/hide-by-sender-in-room', auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.setSenderHidden(actor, body(), true),
  },
  {
    method: 'POST', path: '/messages/unhide-by-sender-in-room', auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.setSenderHidden(actor, body(), false),
  },
  {
    method: 'POST', path: '/messages/user-delete', auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.deleteForMe(actor, body()),
  },
  {
    method: 'POST', path: '/messages/user-delete/all-in-room', auth: 'actor',
    handle: ({ core, actor, body }) => core.messageActions.deleteAllForMe(actor, body()),
  },
  {
    method: 'GET', path: '/messages/user-delete', auth: 'actor',
    handle: ({ core, actor, req }) => core.messageActions.listDeletedForMe(actor, req.query.get('room') ?? undefined),
  },
];
