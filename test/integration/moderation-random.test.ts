import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { connect, once, sleep } from '../helpers/sockets.js';

/** Small seeded PRNG so a failing sequence can be replayed from its seed. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const USERS = ['u0', 'u1', 'u2', 'u3', 'u4'];
const STEPS = 250;

describe.each(TRANSPORTS)('randomized moderation invariants over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const sockets: Record<string, Socket> = {};
  /** Per user: every `chat message` payload in arrival order. */
  const received: Record<string, any[]> = {};

  beforeAll(async () => {
    t = await startTestServer(transport, { socketEventsPerSecond: 10_000 });
    app = await t.createApp();
    for (const id of ['owner', ...USERS]) tokens[id] = await t.createUser(app, id);
    for (const id of USERS) {
      const s = connect(t.base, { auth: { clientKey: app.clientKey, token: tokens[id] } });
      sockets[id] = s;
      received[id] = [];
      s.on('chat message', (m: unknown) => received[id]!.push(m));
      await once(s, 'connect');
    }
  });
  afterAll(async () => {
    for (const s of Object.values(sockets)) s.disconnect();
    await t.close();
  });

  it('blocks, bans, recalls and membership changes never leak a message', async () => {
    const seed = Number(process.env.MODERATION_SEED ?? Date.now() % 1_000_000);
    const rnd = mulberry32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const as = (who: string) => user(t.base, app, tokens[who]!);
    const adm = admin(t.base, app);
    const roomId = 'arena';
    await as('owner').post('/rooms/createAndJoin', { _id: roomId, name: 'Arena', invitee: USERS.slice(0, 3) });

    // The model of who may hear whom.
    const members = new Set(['owner', ...USERS.slice(0, 3)]);
    const banned = new Set<string>();
    const blocks = new Set<string>(); // "blocker>blockee"
    /** message id → who must receive it, who must never receive it, its content */
    const sent = new Map<string, { sender: string; text: string; mustGet: Set<string>; mustNot: Set<string> }>();
    const recalled = new Set<string>();
    const log: string[] = [];

    for (let step = 0; step < STEPS; step++) {
      const actor = pick(USERS);
      const op = rnd();
      if (op < 0.45) {
        const text = `s${step}-${actor}`;
        const viaSocket = rnd() < 0.3;
        const allowed = members.has(actor) && !banned.has(actor);
        let id: string | undefined;
        let errorCode: string | undefined;
        if (viaSocket) {
          const ack = await sockets[actor]!.timeout(3000).emitWithAck('chat message', { room: roomId, message: text });
          id = ack.result?._id;
          errorCode = ack.error?.code;
        } else {
          const r = await as(actor).post(`/rooms/${roomId}/message`, { message: text });
          id = r.body.result?._id;
          errorCode = r.body.error?.code;
        }
        log.push(`${step} send ${actor} ${viaSocket ? 'socket' : 'rest'} -> ${errorCode ?? 'ok'}`);
        expect(Boolean(id), `step ${step}: ${actor} send allowed=${allowed} got ${errorCode} (seed ${seed})`).toBe(allowed);
        if (id) {
          const mustGet = new Set<string>();
          const mustNot = new Set<string>();
          for (const u of USERS) {
            const hears = members.has(u) && !banned.has(u) && !blocks.has(`${u}>${actor}`);
            (hears ? mustGet : mustNot).add(u);
          }
          sent.set(id, { sender: actor, text, mustGet, mustNot });
        }
      } else if (op < 0.55) {
        const target = pick(USERS.filter((u) => u !== actor));
        const key = `${actor}>${target}`;
        if (blocks.has(key)) {
          await as(actor).del(`/blockStatus/my/${target}`);
          blocks.delete(key);
        } else {
          await as(actor).post(`/blockStatus/my/${target}`);
          blocks.add(key);
        }
        log.push(`${step} block-toggle ${key} -> ${blocks.has(key)}`);
      } else if (op < 0.65) {
        const target = pick(USERS);
        if (banned.has(target)) {
          await adm.del(`/blockStatus/room/${roomId}/${target}`);
          banned.delete(target);
        } else {
          await as('owner').post(`/blockStatus/room/${roomId}/${target}`);
          banned.add(target);
        }
        log.push(`${step} ban-toggle ${target} -> ${banned.has(target)}`);
      } else if (op < 0.8) {
        const mine = [...sent.entries()].filter(([id, m]) => m.sender === actor && !recalled.has(id));
        if (mine.length === 0) continue;
        const [id] = pick(mine);
        const r = await as(actor).post(`/rooms/${roomId}/message`, { _id: id, messageType: 'recall' });
        const allowed = members.has(actor) && !banned.has(actor);
        log.push(`${step} recall ${actor} ${id} -> ${r.body.error?.code ?? 'ok'}`);
        expect(r.status === 200, `step ${step}: recall by ${actor} (seed ${seed})`).toBe(allowed);
        if (r.status === 200) recalled.add(id);
      } else {
        const target = pick(USERS);
        if (members.has(target)) {
          await as('owner').post(`/rooms/${roomId}/delete/members`, { members: [target] });
          members.delete(target);
        } else {
          await adm.post(`/rooms/${roomId}/members`, { invitees: [target] });
          members.add(target);
        }
        log.push(`${step} member-toggle ${target} -> ${members.has(target)}`);
      }
    }
    await sleep(300);

    const context = `seed ${seed}\n${log.slice(-20).join('\n')}`;
    for (const [id, m] of sent) {
      for (const u of USERS) {
        const got = received[u]!.filter((x) => x._id === id);
        const original = got.filter((x) => x.messageType !== 'recall');
        if (m.mustNot.has(u)) expect(original, `${u} must not get ${m.text}\n${context}`).toEqual([]);
        if (m.mustGet.has(u)) expect(original.length, `${u} must get ${m.text}\n${context}`).toBe(1);
      }
    }
    // After a recall, nobody sees the old content again: not live, not in history.
    for (const u of USERS) {
      const seenRecall = new Set<string>();
      for (const event of received[u]!) {
        if (event.messageType === 'recall') seenRecall.add(event._id);
        else expect(seenRecall.has(event._id), `${u} saw ${event._id} after its recall\n${context}`).toBe(false);
      }
    }
    const history = (await admin(t.base, app).get(`/rooms/${roomId}/messages/v3?limit=1000`)).body.result.data;
    for (const msg of history) {
      if (recalled.has(msg._id)) expect(msg).toMatchObject({ messageType: 'recall', message: '' });
      else if (sent.has(msg._id)) expect(msg.message).toBe(sent.get(msg._id)!.text);
    }
    expect(sent.size).toBeGreaterThanOrEqual(10);
  });
});
