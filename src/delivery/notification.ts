/**
 * A push notification before it is shaped for a provider, following IMKIT's push payload
 * (api-doc `push/Push-Localization.md`, `push/FCM-Firebase-notification-format.md`,
 * `push/push-to-clients.md`): an iOS-style alert (text, or `loc-key` `im_loc_<messageType>`
 * with `loc-args` [sender nickname, content]), Android title/body, the badge, and the data
 * an app needs to open the room (`room`, `messageID`, the message itself as `payload`).
 */
export interface Notification {
  alert?: string | { 'loc-key'?: string; 'loc-args'?: string[]; title?: string };
  title?: string;
  body?: string;
  badge?: number;
  sound?: string;
  type?: string;
  topic?: string;
  /** Unix seconds after which APNs may drop it. */
  expiry?: number;
  icon?: string;
  collapseKey?: string;
  room?: string;
  messageID?: string;
  /** The message (IMKIT's `payload`), left out when it would not fit a provider's size limit. */
  payload?: unknown;
  roomTags?: string[];
}

/** APNs refuses payloads over 4 KB; FCM data over 4 KB. */
const MAX_PAYLOAD_BYTES = 4096;

const locKey = (n: Notification) => (typeof n.alert === 'object' ? n.alert['loc-key'] : undefined);
const locArgs = (n: Notification) => (typeof n.alert === 'object' ? n.alert['loc-args'] : undefined);

/** The APNs request body: `aps` plus IMKIT's custom keys (Apple's payload reference). */
export function apnsBody(n: Notification, voip = false): string {
  const alert =
    typeof n.alert === 'string' ? n.alert
    : n.alert ? { ...(n.title !== undefined ? { title: n.title } : {}), ...n.alert }
    : { ...(n.title !== undefined ? { title: n.title } : {}), ...(n.body !== undefined ? { body: n.body } : {}) };
  const aps: Record<string, unknown> = voip ? {} : { alert, sound: n.sound ?? 'default', 'mutable-content': 1 };
  if (n.badge !== undefined && !voip) aps.badge = n.badge;
  const body: Record<string, unknown> = { aps };
  if (n.room !== undefined) body.room = n.room;
  if (n.messageID !== undefined) body.messageID = n.messageID;
  if (n.type !== undefined) body.type = n.type;
  return withPayload(body, n.payload);
}

/**
 * The FCM HTTP v1 `messages:send` body (firebase.google.com/docs/reference/fcm/rest/v1/
 * projects.messages): IMKIT's data keys (all strings), Android localisation keys and
 * `click_action: push_chatroom`, the APNs alert for iOS apps on FCM, and a web notification.
 */
export function fcmBody(token: string, n: Notification): string {
  const key = locKey(n);
  const args = locArgs(n);
  const title = n.title ?? (typeof n.alert === 'object' ? n.alert.title : undefined) ?? '';
  const body = n.body ?? (typeof n.alert === 'string' ? n.alert : '');
  const data: Record<string, string> = { title, body, redirect: '/chat' };
  if (n.badge !== undefined) data.badge = String(n.badge);
  if (key !== undefined) data['loc-key'] = key;
  if (args !== undefined) data['loc-args'] = JSON.stringify(args);
  if (n.type !== undefined) data.type = n.type;
  if (n.room !== undefined) data.room = n.room;
  if (n.messageID !== undefined) data.messageID = n.messageID;
  if (n.roomTags !== undefined) data.roomTags = JSON.stringify(n.roomTags);
  const androidNotification: Record<string, unknown> = { title, body, click_action: 'push_chatroom' };
  if (key !== undefined) androidNotification.body_loc_key = key;
  if (args !== undefined) androidNotification.body_loc_args = args;
  if (n.badge !== undefined) androidNotification.notification_count = n.badge;
  if (n.icon !== undefined) androidNotification.icon = n.icon;
  const apsAlert: Record<string, unknown> = { title };
  if (key !== undefined) Object.assign(apsAlert, { 'loc-key': key, 'loc-args': args ?? [] });
  else apsAlert.body = body;
  const aps: Record<string, unknown> = { alert: apsAlert, sound: n.sound ?? 'default', 'mutable-content': 1 };
  if (n.badge !== undefined) aps.badge = n.badge;
  const message = {
    token,
    data,
    android: { ...(n.collapseKey !== undefined ? { collapse_key: n.collapseKey } : {}), notification: androidNotification },
    apns: { headers: { 'apns-priority': '10' }, payload: { aps } },
    webpush: { notification: { title, body } },
  };
  // The message itself rides along as `data.payload` when it fits.
  if (n.payload !== undefined) {
    const payload = JSON.stringify(n.payload);
    if (Buffer.byteLength(JSON.stringify(data)) + Buffer.byteLength(payload) + 16 <= MAX_PAYLOAD_BYTES) data.payload = payload;
  }
  return JSON.stringify({ message });
}

function withPayload(body: Record<string, unknown>, payload: unknown): string {
  const without = JSON.stringify(body);
  if (payload === undefined) return without;
  const withIt = JSON.stringify({ ...body, payload });
  return Buffer.byteLength(withIt) <= MAX_PAYLOAD_BYTES ? withIt : without;
}
