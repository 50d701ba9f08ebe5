import { invitationInputs } from '../../core/invitations.js';
import type { RouteDef } from '../route.js';

/** Room invitations (api-doc OLD room/Room-*-invitation*.md). */
export const invitationRoutes: RouteDef[] = [
  { method: 'GET', path: '/rooms/invitations', summary: 'Your pending room invitations', auth: 'actor', handle: ({ core, actor }) => core.invitations.mine(actor) },
  { method: 'GET', path: '/rooms/:id/invitations', summary: "A room's pending invitations", auth: 'actor', handle: ({ core, actor, params }) => core.invitations.ofRoom(actor, params.id!) },
  { method: 'DELETE', path: '/rooms/:id/invitations', summary: 'Decline your invitation to a room', auth: 'actor', handle: ({ core, actor, params }) => core.invitations.decline(actor, params.id!) },
  {
    method: 'POST', path: '/rooms/:id/delete/invitations', summary: 'Withdraw invitations to a room', body: invitationInputs.cancel, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.invitations.cancel(actor, params.id!, body()),
  },
  {
    method: 'DELETE', path: '/rooms/:id/invitations/:invitee', summary: "Withdraw one user's invitation", auth: 'actor',
    handle: ({ core, actor, params }) => core.invitations.cancel(actor, params.id!, { invitees: [params.invitee!] }),
  },
];
