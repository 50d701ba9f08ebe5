import type { RouteDef } from '../route.js';

/** Room invitations (api-doc OLD room/Room-*-invitation*.md). */
export const invitationRoutes: RouteDef[] = [
  { method: 'GET', path: '/rooms/invitations', auth: 'actor', handle: ({ core, actor }) => core.invitations.mine(actor) },
  { method: 'GET', path: '/rooms/:id/invitations', auth: 'actor', handle: ({ core, actor, params }) => core.invitations.ofRoom(actor, params.id!) },
  { method: 'DELETE', path: '/rooms/:id/invitations', auth: 'actor', handle: ({ core, actor, params }) => core.invitations.decline(actor, params.id!) },
  {
    method: 'POST', path: '/rooms/:id/delete/invitations', auth: 'actor',
    handle: ({ core, actor, params, body }) => core.invitations.cancel(actor, params.id!, body()),
  },
  {
    method: 'DELETE', path: '/rooms/:id/invitations/:invitee', auth: 'actor',
    handle: ({ core, actor, params }) => core.invitations.cancel(actor, params.id!, { invitees: [params.invitee!] }),
  },
];
