import { roomInputs } from '../../core/rooms.js';
import { Errors } from '../../core/errors.js';
import { credentialsFromHeaders, deviceIdFromHeaders } from '../../credentials.js';
import type { RouteContext, RouteDef } from '../route.js';
import { json } from '../envelope.js';
import { userInputs } from '../../core/users.js';
import { deliveryInputs } from '../../core/delivery.js';

/** Sandbox sign-in, v1 and v2: the API key, or the client key alone when the operator enabled it. */
async function signIn({ core, req, body, config, authenticate }: RouteContext) {
  const creds = credentialsFromHeaders(req.headers, config.trustProxy);
  if (creds.apiKey) return core.users.sandboxSignIn((await authenticate()).app, body());
  if (!config.sandboxSignIn) throw Errors.sandboxDisabled();
  return core.users.sandboxSignIn(await core.identity.authenticateClientKey(creds), body());
}

/** The user's own account: client key + token. */
export const meRoutes: RouteDef[] = [
  { method: 'GET', path: '/me', summary: 'The signed-in user', auth: 'actor', handle: ({ core, actor }) => core.users.me(actor) },
  { method: 'POST', path: '/me', summary: 'Update your profile', body: userInputs.updateMe, auth: 'actor', handle: ({ core, actor, body }) => core.users.updateMe(actor, body()) },
  {
    method: 'GET', path: '/me/badge', summary: 'Unread count over your rooms', query: { roomTags: 'only rooms with this tag (repeatable)' }, auth: 'actor',
    handle: ({ core, actor, req }) => core.rooms.badge(actor, req.query.getAll('roomTags')),
  },
  { method: 'POST', path: '/badges/byRoomTags', summary: 'Unread counts by room tag (AND total)', body: roomInputs.badgesByTags, auth: 'actor', handle: ({ core, actor, body }) => core.rooms.badgesByTags(actor, body()) },
  {
    // IMKIT: the API key, or (sandbox, off unless the operator enables it) the client key alone.
    method: 'POST', path: '/auths/sign/v2', summary: 'Sign in and get a token (API key; client key alone in sandbox mode)', body: userInputs.signIn, auth: 'public',
    handle: (ctx) => signIn(ctx),
  },
  {
    // v1 (admin/Admin-Create-Access-Token.md): the same sign-in, answered as the bare result, without IMKIT's envelope.
    method: 'POST', path: '/auths/sign', summary: 'Sign in and get a token, v1: the result without the envelope (API key; client key alone in sandbox mode)', body: userInputs.signIn, auth: 'public', raw: true,
    handle: async (ctx) => json(200, await signIn(ctx)),
  },
  // Logging out (client/Me-Logout.md, Me-Logout-Others.md): tokens and push devices; `IM-Device-ID` names the caller's device.
  {
    method: 'POST', path: '/me/logout', summary: 'Revoke the token of this request (its sockets are cut) and the push device named by IM-Device-ID', body: null, auth: 'actor',
    handle: ({ core, actor, req, config }) =>
      core.users.logout(actor, { token: credentialsFromHeaders(req.headers, config.trustProxy).token, deviceId: deviceIdFromHeaders(req.headers) }),
  },
  {
    method: 'POST', path: '/me/logout-others', summary: "Revoke your other tokens and every push device but IM-Device-ID's", body: null, auth: 'actor',
    handle: ({ core, actor, req }) => core.users.logoutOthers(actor, { deviceId: deviceIdFromHeaders(req.headers) }),
  },
  // The user's push switch (client/Me-Enable-Notification.md, Me-Disable-Notification.md): empty bodies.
  {
    method: 'POST', path: '/me/notification/enable', summary: 'Turn your push notifications on', body: null, auth: 'actor',
    handle: ({ core, actor }) => core.users.setNotification(actor, true),
  },
  {
    method: 'POST', path: '/me/notification/disable', summary: 'Turn your push notifications off (no message push reaches you)', body: null, auth: 'actor',
    handle: ({ core, actor }) => core.users.setNotification(actor, false),
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
