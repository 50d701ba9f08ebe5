import type { RouteDef } from '../route.js';
import { userInputs } from '../../core/users.js';
import { deliveryInputs } from '../../core/delivery.js';

/** The user's own account: client key + token. */
export const meRoutes: RouteDef[] = [
  { method: 'GET', path: '/me', summary: 'The signed-in user', auth: 'actor', handle: ({ core, actor }) => core.users.me(actor) },
  { method: 'POST', path: '/me', summary: 'Update your profile', body: userInputs.updateMe, auth: 'actor', handle: ({ core, actor, body }) => core.users.updateMe(actor, body()) },
  { method: 'GET', path: '/me/pref', summary: 'Your preferences (muted rooms)', auth: 'actor', handle: ({ core, actor }) => core.users.prefs(actor) },
  {
    method: 'GET', path: '/me/badge', summary: 'Unread count over your rooms', query: { roomTags: 'only rooms with this tag (repeatable)' }, auth: 'actor',
    handle: ({ core, actor, req }) => core.rooms.badge(actor, req.query.getAll('roomTags')),
  },
  // Push devices; with the API key, `clientId` names the user.
  {
    method: 'POST', path: '/me/subscribe', summary: 'Register a push device token (with the API key: for clientId)', body: deliveryInputs.subscribe, auth: 'actor',
    handle: ({ core, actor, body }) => core.delivery.subscribe(actor, body()),
  },
  {
    method: 'POST', path: '/me/unsubscribe', summary: 'Remove a push device (or every device of that type)', body: deliveryInputs.unsubscribe, auth: 'actor',
    handle: ({ core, actor, body }) => core.delivery.unsubscribe(actor, body()),
  },
];
