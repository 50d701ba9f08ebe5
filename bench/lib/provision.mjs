// Provisions roomcast the way an operator and an application backend would: through REST.
import { OPERATOR_SECRET } from './servers.mjs';

async function call(base, method, path, headers, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return json.result;
}

async function pool(items, concurrency, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

/**
 * One application, `users` users with issued tokens, and `rooms` (each {id, members: [index…]}).
 * Returns {app, tokens[], connectFor(userIndex)} where connectFor gives the Socket.IO CONNECT
 * packet carrying the IMKIT credentials (client key + token) in its auth object.
 */
export async function provisionRoomcast(base, { users, rooms }) {
  const app = await call(base, 'POST', '/operator/apps', { authorization: `Bearer ${OPERATOR_SECRET}` }, { name: 'bench' });
  const admin = { 'IM-API-KEY': app.apiKey };
  const ids = Array.from({ length: users }, (_, i) => `u${i}`);
  const tokens = await pool(ids, 16, async (id) => (await call(base, 'POST', '/admin/clients', admin, { _id: id, nickname: id, issueAccessToken: true })).token);
  await pool(rooms, 8, (room) => call(base, 'POST', '/rooms', admin, { _id: room.id, name: room.id, members: room.members.map((i) => ids[i]) }));
  return {
    app,
    ids,
    tokens,
    connectFor: (i) => `40${JSON.stringify({ clientKey: app.clientKey, token: tokens[i] })}`,
  };
}
