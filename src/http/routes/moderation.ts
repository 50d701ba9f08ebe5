import type { RouteDef } from '../route.js';

/** Pin, delete, personal blocks, room bans and notification mutes (recall/edit go through POST /rooms/:id/message). */
export const moderationRoutes: RouteDef[] = [
  { method: 'POST', path: '/messages/:id/pin', summary: 'Pin a message (one per room)', body: null, auth: 'actor', handle: ({ core, actor, params }) => core.messages.pin(actor, params.id!, true) },
  { method: 'DELETE', path: '/messages/:id/pin', summary: 'Unpin a message', auth: 'actor', handle: ({ core, actor, params }) => core.messages.pin(actor, params.id!, false) },
  {
    method: 'DELETE', path: '/rooms/:id/messages/:messageId', summary: 'Delete a message', auth: 'actor',
    handle: ({ core, actor, params }) => core.messages.remove(actor, params.id!, params.messageId!),
  },
  { method: 'GET', path: '/blockStatus/my', summary: 'Users you blocked', auth: 'actor', handle: ({ core, actor }) => core.moderation.myBlocks(actor) },
  {
    method: 'GET', path: '/blockStatus/my/:blockee', summary: 'Whether you blocked a user', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.myBlocks(actor, params.blockee!),
  },
  {
    method: 'POST', path: '/blockStatus/my/:blockee', summary: 'Block a user', body: null, auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.block(actor, params.blockee!),
  },
  {
    method: 'DELETE', path: '/blockStatus/my/:blockee', summary: 'Unblock a user', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.unblock(actor, params.blockee!),
  },
  {
    method: 'GET', path: '/blockStatus/room/:roomId', summary: "A room's bans", auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.bans(actor, params.roomId!),
  },
  {
    method: 'GET', path: '/blockStatus/room/:roomId/:blockee', summary: 'Whether a user is banned from a room', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.bans(actor, params.roomId!, params.blockee!),
  },
  {
    method: 'POST', path: '/blockStatus/room/:roomId/:blockee', summary: 'Ban a user from a room', body: null, auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.ban(actor, params.roomId!, params.blockee!),
  },
  {
    method: 'DELETE', path: '/blockStatus/room/:roomId/:blockee', summary: 'Lift a ban', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.unban(actor, params.roomId!, params.blockee!),
  },
  { method: 'POST', path: '/me/mute/:room', summary: 'Mute notifications of a room', body: null, auth: 'actor', handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, true) },
  { method: 'DELETE', path: '/me/mute/:room', summary: 'Unmute a room', auth: 'actor', handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, false) },
  {
    method: 'POST', path: '/admin/clients/:id/mute/:room', summary: 'Mute a room for a user (API key)', body: null, auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, true, params.id!),
  },
  {
    method: 'DELETE', path: '/admin/clients/:id/mute/:room', summary: 'Unmute a room for a user (API key)', auth: 'actor',
    handle: ({ core, actor, params }) => core.moderation.setMute(actor, params.room!, false, params.id!),
  },
];
