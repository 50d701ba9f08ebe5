import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startNode, type NodeProcess } from '../helpers/cluster.js';
import { makePng } from '../helpers/png.js';
import { dropSchemas, freshSchema, SHARED_DATABASE_URL } from '../helpers/postgres.js';
import { admin, api, OPERATOR_SECRET, type TestApp, user } from '../helpers/server.js';

/**
 * Durability of the compiled server (`node dist/main.js`, as deployments run it): a clean
 * restart keeps a whole session, and a SIGKILL during a send loop loses no acknowledged
 * message, on the embedded SQLite default and on PostgreSQL.
 */
const dirs: string[] = [];
const running: NodeProcess[] = [];
const schemas: string[] = [];
afterAll(async () => {
  await Promise.all(running.map((n) => n.kill('SIGKILL')));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await dropSchemas(SHARED_DATABASE_URL, schemas);
});

function dataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-durable-'));
  dirs.push(dir);
  return dir;
}
async function start(id: string, env: Record<string, string>): Promise<NodeProcess> {
  const node = await startNode(id, { ROOMCAST_OPERATOR_SECRET: OPERATOR_SECRET, ROOMCAST_LOG_LEVEL: 'warn', ...env });
  running.push(node);
  return node;
}

async function createApp(base: string): Promise<TestApp> {
  const res = await api(base, { authorization: `Bearer ${OPERATOR_SECRET}` }).post('/operator/apps', { name: 'durable' });
  expect(res.status).toBe(200);
  return { appId: res.body.result.id, apiKey: res.body.result.apiKey, clientKey: res.body.result.clientKey };
}
async function createUser(base: string, app: TestApp, id: string): Promise<string> {
  const res = await admin(base, app).post('/admin/clients', { _id: id, nickname: id, issueAccessToken: true });
  expect(res.status).toBe(200);
  return res.body.result.token;
}

describe('an embedded server restarted between two halves of a session', () => {
  it('finds the application, users, room, messages and uploaded file after the restart', async () => {
    const dir = dataDir();
    const env = { ROOMCAST_DATABASE_PATH: path.join(dir, 'roomcast.db'), ROOMCAST_FILES_DIR: path.join(dir, 'files') };
    const first = await start('embedded', env);
    const app = await createApp(first.base);
    const tokens = { alice: await createUser(first.base, app, 'alice'), bob: await createUser(first.base, app, 'bob') };
    expect((await admin(first.base, app).post('/rooms', { _id: 'trip', name: 'Trip', members: ['alice', 'bob'] })).status).toBe(200);
    const sent: string[] = [];
    for (const [who, text] of [['alice', 'hello'], ['bob', 'hi alice'], ['alice', 'photo coming']] as const) {
      const res = await user(first.base, app, tokens[who]).post('/rooms/trip/message', { roomId: 'trip', messageType: 'text', message: text, reply: null, mentions: [] });
      expect(res.status).toBe(200);
      sent.push(res.body.result._id);
    }
    // Multipart upload as the SDKs send it: `extra` then `file` (see test/integration/files.test.ts).
    const png = makePng(40, 30);
    const form = new FormData();
    form.append('extra', JSON.stringify({ roomId: 'trip' }));
    form.append('file', new Blob([png], { type: 'image/png' }), 'view.png');
    const uploaded = await fetch(`${first.base}/files/chatserver-upload`, {
      method: 'POST', headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.alice }, body: form,
    });
    expect(uploaded.status).toBe(200);
    const fileId = ((await uploaded.json()) as { result: { _id: string } }).result._id;
    await first.kill('SIGTERM');

    const second = await start('embedded-again', env);
    const bob = user(second.base, app, tokens.bob);
    expect((await bob.get('/me')).body.result).toMatchObject({ _id: 'bob', nickname: 'bob' });
    expect((await admin(second.base, app).get('/admin/clients')).body.result.data.map((u: { _id: string }) => u._id).sort()).toEqual(['alice', 'bob']);
    const room = await bob.get('/rooms/trip');
    expect(room.status).toBe(200);
    expect(room.body.result).toMatchObject({ _id: 'trip', name: 'Trip', lastMessage: { _id: sent[2] } });
    const history = await bob.get('/rooms/trip/messages/v3?limit=10');
    expect(history.body.result.data.map((m: { _id: string }) => m._id)).toEqual([...sent].reverse());
    const file = await fetch(`${second.base}/files/chatserver-upload/${fileId}`, { headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens.bob } });
    expect(file.status).toBe(200);
    const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
    expect(md5(new Uint8Array(await file.arrayBuffer()))).toBe(md5(png));
    // The session goes on.
    expect((await bob.post('/rooms/trip/message', { roomId: 'trip', messageType: 'text', message: 'back again', reply: null, mentions: [] })).status).toBe(200);
    await second.kill('SIGTERM');
  }, 60_000);
});

describe.each([
  ['embedded SQLite', () => ({ ROOMCAST_DATABASE_PATH: path.join(dataDir(), 'roomcast.db') })],
  ['PostgreSQL', () => {
    const schema = freshSchema();
    schemas.push(schema);
    return { ROOMCAST_DATABASE_URL: SHARED_DATABASE_URL, ROOMCAST_DATABASE_SCHEMA: schema };
  }],
] as const)('a node SIGKILLed during a send loop, on %s', (_engine, makeEnv) => {
  it('has every acknowledged message in history after the restart', async () => {
    const env: Record<string, string> = makeEnv();
    const first = await start('victim', env);
    const app = await createApp(first.base);
    const tokens = { alice: await createUser(first.base, app, 'alice'), bob: await createUser(first.base, app, 'bob') };
    await admin(first.base, app).post('/rooms', { _id: 'lobby', members: ['alice', 'bob'] });
    const acked: string[] = [];
    let killed = false;
    const loop = async (who: 'alice' | 'bob') => {
      for (let i = 0; i < 2000 && !killed; i++) {
        try {
          const res = await user(first.base, app, tokens[who]).post('/rooms/lobby/message', { roomId: 'lobby', messageType: 'text', message: `${who} ${i}`, reply: null, mentions: [] });
          if (res.status === 200) acked.push(res.body.result._id);
        } catch {
          return; // the connection died with the process: that request was never acknowledged
        }
      }
    };
    const loops = [loop('alice'), loop('bob'), loop('alice'), loop('bob')];
    while (acked.length < 150) await new Promise((r) => setTimeout(r, 5));
    killed = true;
    await first.kill('SIGKILL');
    await Promise.all(loops);
    const countedAtKill = acked.length;

    const second = await start('restarted', env);
    const ids = new Set<string>();
    let before: string | undefined;
    for (;;) {
      const page = await user(second.base, app, tokens.alice).get(`/rooms/lobby/messages/v3?limit=1000${before ? `&beforeMessage=${before}` : ''}`);
      expect(page.status).toBe(200);
      const data = page.body.result.data as { _id: string }[];
      const fresh = data.filter((m) => !ids.has(m._id));
      for (const m of fresh) ids.add(m._id);
      if (fresh.length === 0) break;
      before = data.at(-1)!._id;
    }
    expect(countedAtKill).toBeGreaterThanOrEqual(150);
    expect(acked.filter((id) => !ids.has(id))).toEqual([]);
    await second.kill('SIGTERM');
  }, 60_000);
});

describe('moving an installation: roomcast-admin export / import / backup', () => {
  const cli = path.resolve(import.meta.dirname, '../../dist/cli.js');
  const runCli = (args: string[], env: Record<string, string>, input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      // 'close', not 'exit': the output is complete only once the pipes have closed.
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.on('error', () => {}); // it may refuse input and exit before reading it all
      child.stdin.end(input ?? '');
    });

  it('moves every record from SQLite to PostgreSQL and back unchanged; backs SQLite up online', async () => {
    const dir = dataDir();
    const sqliteEnv = { ROOMCAST_DATABASE_PATH: path.join(dir, 'roomcast.db'), ROOMCAST_FILES_DIR: path.join(dir, 'files') };
    const source = await start('source', sqliteEnv);
    const app = await createApp(source.base);
    const tokens = { alice: await createUser(source.base, app, 'alice'), bob: await createUser(source.base, app, 'bob') };
    await admin(source.base, app).post('/rooms', { _id: 'r1', name: 'One', members: ['alice', 'bob'] });
    // A push device (Flutter/Vue SDK body) moves with the data.
    expect((await user(source.base, app, tokens.bob).post('/me/subscribe', { token: 'bob-fcm', type: 'fcm', deviceId: 'bob-phone' })).status).toBe(200);
    for (let i = 0; i < 30; i++) {
      const who = i % 2 ? 'bob' : 'alice';
      await user(source.base, app, tokens[who]).post('/rooms/r1/message', { roomId: 'r1', messageType: 'text', message: `m${i}`, reply: null, mentions: [] });
    }
    // A quitted room and a group's room preference move too (GET /rooms/quitted, /roomPrefs/:room/group/:group).
    await admin(source.base, app).post('/rooms', { _id: 'r2', name: 'Two', members: ['alice', 'bob'] });
    await user(source.base, app, tokens.alice).post('/roomPrefs/r2/group/team', { tags: ['t'] });
    expect((await user(source.base, app, tokens.bob).post('/rooms/r2/delete/members', { systemMessage: false, members: ['bob'] })).status).toBe(200);
    // Online backup while the server runs, then the export from the stopped server.
    const backup = path.join(dir, 'backup.db');
    expect((await runCli(['backup', '--out', backup], sqliteEnv)).code).toBe(0);
    await source.kill('SIGTERM');
    const exported = await runCli(['export'], sqliteEnv);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = exported.stdout.trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ type: 'roomcast-export', version: 1 });
    expect(lines.filter((l) => l.includes('"type":"message"'))).toHaveLength(30);
    expect(lines.filter((l) => /"type":"(quitted-room|group-room-pref)"/.test(l)).map((l) => JSON.parse(l).type).sort()).toEqual(['group-room-pref', 'quitted-room']);
    expect(lines.filter((l) => l.includes('"type":"device"')).map((l) => JSON.parse(l).record)).toEqual([
      { userId: 'bob', type: 'fcm', deviceId: 'bob-phone', token: 'bob-fcm', createdAt: expect.any(Number) },
    ]);

    const schema = freshSchema();
    schemas.push(schema);
    const pgEnv = { ROOMCAST_DATABASE_URL: SHARED_DATABASE_URL, ROOMCAST_DATABASE_SCHEMA: schema, ROOMCAST_FILES_DIR: path.join(dir, 'files') };
    const imported = await runCli(['import'], pgEnv, exported.stdout);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toContain('"message":30');
    const twice = await runCli(['import'], pgEnv, exported.stdout);
    expect(twice.stderr, JSON.stringify(twice)).toContain('already holds applications');
    const again = await runCli(['export'], pgEnv);
    expect(again.stdout.trim().split('\n').sort()).toEqual([...lines].sort());

    // The application works on PostgreSQL as it did: keys, tokens, history in order, unread counts.
    const moved = await start('moved', pgEnv);
    const history = await user(moved.base, app, tokens.alice).get('/rooms/r1/messages/v3?limit=100');
    expect(history.body.result.totalCount).toBe(30);
    expect(history.body.result.data.map((m: { message: string }) => m.message)).toEqual(Array.from({ length: 30 }, (_, i) => `m${29 - i}`));
    // The imported messages are indexed for search (Vue: searchRoomsByKeyword → POST /search {type, keyword}).
    const idOf = new Map(history.body.result.data.map((m: { _id: string; message: string }) => [m.message, m._id]));
    const found = await user(moved.base, app, tokens.alice).post('/search', { type: ['messages'], keyword: 'M1' });
    expect(found.body.result.messages[0].messages).toEqual(['m19', 'm18', 'm17', 'm16', 'm15', 'm14', 'm13', 'm12', 'm11', 'm10', 'm1'].map((t) => idOf.get(t)));
    expect((await user(moved.base, app, tokens.bob).get('/rooms/quitted')).body.result.data.map((r: { _id: string }) => r._id)).toEqual(['r2']);
    expect((await user(moved.base, app, tokens.alice).get('/roomPrefs/group/team')).body.result.data).toEqual([{ room: 'r2', tags: ['t'] }]);
    await moved.kill('SIGTERM');

    const restored = await start('restored', { ...sqliteEnv, ROOMCAST_DATABASE_PATH: backup });
    expect((await user(restored.base, app, tokens.bob).get('/rooms/r1/messages/v3?limit=100')).body.result.totalCount).toBe(30);
    await restored.kill('SIGTERM');
  }, 60_000);
});
