import type { RouteDef } from '../route.js';

/** Pin, delete, personal blocks, room bans and notification mutes (recall/edit go through POST /rooms/:id/message). */
export const moderationRoutes: RouteDef[] = [
  { method: 'POST', path: '/messages/:id/pin', auth: 'actor', handle: ({ core, actor, params }) => core.messages.pin(actor, params.id!, true) },
  { method: 'DELETE', path: '/messages/:id/pin', auth: 'actor', handle: ({ core, actor, params }) => core.messages.pin(actor, params.id!, false) },
  {
    method: 'DELETE', path: '/rooms/:id/messages/:messageId', auth: 'actor',
    handle: ({ core, actor, params }) => core.messages.remove(actor, params.id!, params.messageId!),
  },
  { method: 'GET', path: '/blockStatus/my', auth: 'actor', handle: ({ core, actor }) => core.moderation.myBlocks(actor) },
  {
    method: 'GET', path: '/blockStatus/my/:blockee', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.myBlocks(actor, params.blockee!),
  },
  {
    method: 'POST', path: '/blockStatus/my/:blockee', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.block(actor, params.blockee!),
  },
  {
    method: 'DELETE', path: '/blockStatus/my/:blockee', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.unblock(actor, params.blockee!),
  },
  {
    method: 'GET', path: '/blockStatus/room/:roomId', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.bans(actor, params.roomId!),
  },
  {
    method: 'GET', path: '/blockStatus/room/:roomId/:blockee', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.bans(actor, params.roomId!, params.blockee!),
  },
  {
    method: 'POST', path: '/blockStatus/room/:roomId/:blockee', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.ban(actor, params.roomId!, params.blockee!),
  },
  {
    method: 'DELETE', path: '/blockStatus/room/:roomId/:blockee', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.unban(actor, params.roomId!, params.blockee!),
  },
  { method: 'POST', path: '/me/mute/:room', auth: 'actor', handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, true) },
  { method: 'DELETE', path: '/me/mute/:room', auth: 'actor', handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, false) },
  {
    method: 'POST', path: '/admin/clients/:id/mute/:room', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, true, params.id!),
  },
  {
    method: 'DELETE', path: '/admin/clients/:id/mute/:room', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, false, params.id!),
  },
];
