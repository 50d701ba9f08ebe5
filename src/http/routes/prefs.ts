import { prefInputs } from '../../core/prefs.js';
import type { RouteDef } from '../route.js';

/** A user's preferences (`/me/pref`) and per-room preferences (`/roomPrefs`). */
export const prefRoutes: RouteDef[] = [
  {
    method: 'GET', path: '/me/pref', summary: 'Your preferences', auth: 'actor',
    handle: ({ core, actor, req }) => core.prefs.list(actor, req.query.get('key') ?? undefined),
  },
  { method: 'GET', path: '/me/prefs', summary: 'Your preferences as a map', auth: 'actor', handle: ({ core, actor }) => core.prefs.map(actor) },
  {
    method: 'POST', path: '/me/pref/:key', summary: 'Set a preference', body: prefInputs.pref, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.prefs.put(actor, params.key!, body()),
  },
  { method: 'DELETE', path: '/me/pref/:key', summary: 'Remove a preference', auth: 'actor', handle: ({ core, actor, params }) => core.prefs.remove(actor, params.key!) },
  { method: 'GET', path: '/roomPrefs', summary: 'Your room preferences (tags, folders)', auth: 'actor', handle: ({ core, actor }) => core.prefs.listRoomPrefs(actor) },
  {
    method: 'POST', path: '/roomPrefs/:room', summary: 'Set your preferences for a room', body: prefInputs.roomPref, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.prefs.setRoomPref(actor, params.room!, body()),
  },
  {
    method: 'DELETE', path: '/roomPrefs/:room/:key', summary: 'Remove a room preference', auth: 'actor',
    handle: ({ core, actor, params }) => core.prefs.unsetRoomPref(actor, params.room!, params.key!),
  },
  // A group's shared preference for a room (the Vue SDK's `updateRoomPrefs` with a room tag).
  {
    method: 'GET', path: '/roomPrefs/group/:group', summary: "A group's room preferences, for the rooms you are in", auth: 'actor',
    handle: ({ core, actor, params }) => core.prefs.listGroupRoomPrefs(actor, params.group!),
  },
  {
    method: 'POST', path: '/roomPrefs/:room/group/:group', summary: "Set a group's preferences for a room", body: prefInputs.roomPref, auth: 'actor',
    handle: ({ core, actor, params, body }) => core.prefs.setGroupRoomPref(actor, params.room!, params.group!, body()),
  },
  {
    method: 'DELETE', path: '/roomPrefs/:room/group/:group/:key', summary: "Remove a key of a group's room preference", auth: 'actor',
    handle: ({ core, actor, params }) => core.prefs.unsetGroupRoomPref(actor, params.room!, params.group!, params.key!),
  },
];
