import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, api, startTestServer, type TestApp, type TestServer, TRANSPORTS, user, errorCode as code } from '../helpers/server.js';
import { collect, once, signedIn } from '../helpers/sockets.js';

/**
 * IMKIT routes the SDKs and api-doc name that roomcast lacked: group room preferences, the v1
 * sandbox sign-in, `/files/video-info`, `/rooms/quitted` and `GET /rooms?pref=`. Bodies copy
 * the Vue SDK (FUNTEKco/imkit-vue-sdk-nuxt `dist/imkit-vue-sdk.js`: `updateRoomPrefs`,
 * `removeMembers`, the video picker's FetchVideoInfo call) and api-doc's pages as they were
 * before its reorganisation (imkit/api-doc history, `pages/docs/config/RoomPrefGroup-*.md`,
 * `pages/docs/admin/Admin-Create-Access-Token.md`, `pages/docs/room/Room-List-quitted-rooms.md`,
 * `pages/docs/room/Room-Filter.md`).
 */

/** One ISO-BMFF box. */
const box = (type: string, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(body.length + 8, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, body]);
};
const u32 = (...values: number[]) => Buffer.concat(values.map((v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }));

/**
 * A minimal MP4 as a camera writes it before "fast start": ftyp, the media data, then moov
 * (mvhd: timescale 1000, 4.5 s; a video track's tkhd: 1280×720, `rotated` turns it by 90°).
 */
function mp4(rotated = false): Buffer {
  const mvhd = box('mvhd', u32(0, 0, 0, 1000, 4500), Buffer.alloc(80));
  const matrix = rotated ? u32(0, 0x10000, 0, 0xffff0000, 0, 0, 0, 0, 0x40000000) : u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000);
  const tkhd = box('tkhd', u32(3, 0, 0, 1, 0, 4500, 0, 0, 0), Buffer.alloc(4), matrix, u32(1280 * 65536, 720 * 65536));
  const soundTkhd = box('tkhd', u32(3, 0, 0, 2, 0, 4500, 0, 0, 0), Buffer.alloc(4), matrix, u32(0, 0));
  return Buffer.concat([
    box('ftyp', Buffer.from('isom'), u32(512), Buffer.from('isomiso2avc1mp41')),
    box('mdat', Buffer.alloc(200_000, 7)),
    box('moov', mvhd, box('trak', soundTkhd), box('trak', tkhd)),
  ]);
}

describe.each(TRANSPORTS)('IMKIT routes the SDKs call, over %s', (transport) => {
  let t: TestServer;
  let sandbox: TestServer;
  let app: TestApp;
  let sandboxApp: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const as = (who: string) => user(t.base, app, tokens[who]!);

  beforeAll(async () => {
    t = await startTestServer(transport);
    sandbox = await startTestServer(transport, { sandboxSignIn: true });
    app = await t.createApp();
    sandboxApp = await sandbox.createApp();
    for (const id of ['alice', 'bob', 'carol']) tokens[id] = await t.createUser(app, id, id.toUpperCase());
    await admin(t.base, app).post('/rooms', { _id: 'desk', name: 'Desk', roomTags: ['support'], members: ['alice', 'bob'], owner: 'alice' });
    await admin(t.base, app).post('/rooms', { _id: 'lobby', name: 'Lobby', members: ['alice', 'bob', 'carol'], owner: 'alice' });
    await admin(t.base, app).post('/rooms', { _id: 'side', name: 'Side', members: ['alice', 'carol'], owner: 'carol' });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    await t.close();
    await sandbox.close();
  });

  const socketOf = (who: string): Promise<Socket> => signedIn(t.base, tokens[who]!, app.clientKey, open);

  it("group room prefs: POST /roomPrefs/:room/group/:group merges a group's pref, listed for members only, key unset by DELETE", async () => {
    const aliceRoomPrefs = collect(await socketOf('alice'), 'roomPref');
    // Vue: the tag modal's updateRoomPrefs({roomId, roomTag, prefs: {tags, tagColors}}) → POST /roomPrefs/:room/group/:roomTag
    const set = await as('alice').post('/roomPrefs/desk/group/support', { tags: ['vip', 'urgent'], tagColors: { vip: '#ef4444', urgent: '#f97316' } });
    expect(set.status).toBe(200);
    expect(set.body.result).toEqual({ room: 'desk', tags: ['vip', 'urgent'], tagColors: { vip: '#ef4444', urgent: '#f97316' } });
    // Another member of the room changes the same group's pref: merged, not replaced.
    const merged = await as('bob').post('/roomPrefs/desk/group/support', { sticky: true });
    expect(merged.body.result).toEqual({ room: 'desk', tags: ['vip', 'urgent'], tagColors: { vip: '#ef4444', urgent: '#f97316' }, sticky: true });
    await as('alice').post('/roomPrefs/lobby/group/support', { folder: 'Later' });
    // api-doc RoomPrefGroup-List.md: {totalCount, data: [{room, …}]}
    const list = await as('alice').get('/roomPrefs/group/support');
    expect(list.body.result.totalCount).toBe(2);
    expect(list.body.result.data).toEqual(expect.arrayContaining([
      { room: 'desk', tags: ['vip', 'urgent'], tagColors: { vip: '#ef4444', urgent: '#f97316' }, sticky: true },
      { room: 'lobby', folder: 'Later' },
    ]));
    // carol is in lobby, not in desk: she sees only lobby's.
    expect((await as('carol').get('/roomPrefs/group/support')).body.result).toEqual({ totalCount: 1, data: [{ room: 'lobby', folder: 'Later' }] });
    // The group's pref is not the user's own: alice's room view keeps her own pref, no roomPref event came.
    expect((await as('alice').get('/rooms/desk')).body.result.pref).toEqual({});
    // api-doc RoomPrefGroup-Unset-a-key.md: DELETE /roomPrefs/:room/group/:group/:key
    const unset = await as('bob').del('/roomPrefs/desk/group/support/tags');
    expect(unset.body.result).toEqual({ room: 'desk', tagColors: { vip: '#ef4444', urgent: '#f97316' }, sticky: true });
    // Not a member: 403; bad body: 400; a different group is separate.
    const outsider = await as('carol').post('/roomPrefs/desk/group/support', { tags: ['x'] });
    expect({ status: outsider.status, code: code(outsider) }).toEqual({ status: 403, code: 'NOT_ROOM_MEMBER' });
    const bad = await as('alice').post('/roomPrefs/desk/group/support', { tags: 'vip' });
    expect({ status: bad.status, code: code(bad) }).toEqual({ status: 400, code: 'INVALID_INPUT' });
    expect((await as('alice').get('/roomPrefs/group/sales')).body.result).toEqual({ totalCount: 0, data: [] });
    expect(aliceRoomPrefs).toEqual([]);
  });

  it('GET /rooms?pref= filters by the caller\'s own room preference (value, $in, $all, $ne, $exists)', async () => {
    const arrived = once<Record<string, unknown>>(await socketOf('alice'), 'roomPref');
    await as('alice').post('/roomPrefs/desk', { tags: ['demo', 'sample'], sticky: true });
    expect((await arrived)[0]).toMatchObject({ room: 'desk', tags: ['demo', 'sample'] });
    await as('alice').post('/roomPrefs/lobby', { tags: ['demo'], folder: 'Some-Folder' });
    await as('bob').post('/roomPrefs/lobby', { tags: ['sample'] });
    const ids = async (who: string, pref: unknown, q?: unknown) => {
      const qs = `pref=${encodeURIComponent(JSON.stringify(pref))}${q ? `&q=${encodeURIComponent(JSON.stringify(q))}` : ''}`;
      const r = await as(who).get(`/rooms?${qs}`);
      expect(r.status, qs).toBe(200);
      return (r.body.result.data as { _id: string }[]).map((room) => room._id).sort();
    };
    // api-doc Room-List-Rooms.md: pref={"tags": "some-tag"}; Room-Filter.md: pref={"tags":{"$in":["demo"]}} with q on roomTags.
    expect(await ids('alice', { tags: 'sample' })).toEqual(['desk']);
    expect(await ids('alice', { tags: { $in: ['demo'] } })).toEqual(['desk', 'lobby']);
    expect(await ids('alice', { tags: { $in: ['demo'] } }, { roomTags: { $in: ['support'] } })).toEqual(['desk']);
    expect(await ids('alice', { tags: { $all: ['demo', 'sample'] } })).toEqual(['desk']);
    expect(await ids('alice', { folder: 'Some-Folder' })).toEqual(['lobby']);
    expect(await ids('alice', { sticky: { $ne: true } })).toEqual(['lobby', 'side']);
    expect(await ids('alice', { folder: { $exists: false } })).toEqual(['desk', 'side']);
    // Each user's own preference: bob tagged lobby "sample", not desk.
    expect(await ids('bob', { tags: 'sample' })).toEqual(['lobby']);
    for (const bad of ['{nope', JSON.stringify({ tags: { $regex: '.*' } }), JSON.stringify(['demo'])]) {
      const r = await as('alice').get(`/rooms?pref=${encodeURIComponent(bad)}`);
      expect({ status: r.status, code: code(r), pref: r.body.RM.startsWith('pref:') }, bad).toEqual({ status: 400, code: 'INVALID_QUERY', pref: true });
    }
  });

  it('GET /rooms/quitted lists rooms left or kicked from, with the pref they had and quittedAt; rejoining removes it', async () => {
    await admin(t.base, app).post('/rooms', { _id: 'temp', name: 'Temp', cover: 'http://example.com/c.png', roomTags: ['demo'], members: ['alice', 'bob', 'carol'], owner: 'alice', isPublic: true });
    await as('bob').post('/roomPrefs/temp', { tags: ['old'] });
    expect((await as('bob').get('/rooms/quitted')).body.result).toEqual({ data: [] });
    const removed = once<Record<string, unknown>>(await socketOf('bob'), 'room');
    // Vue: removeMembers({roomId, uids: [own uid]}) → POST /rooms/:id/delete/members {systemMessage: true, members}
    const before = Date.now();
    const left = await as('bob').post('/rooms/temp/delete/members', { systemMessage: true, members: ['bob'] });
    expect(left.status).toBe(200);
    await removed;
    // The owner kicks carol the same way.
    expect((await as('alice').post('/rooms/temp/delete/members', { systemMessage: true, members: ['carol'] })).status).toBe(200);
    const quitted = await as('bob').get('/rooms/quitted');
    expect(quitted.status).toBe(200);
    // api-doc Room-List-quitted-rooms.md: {data: [{_id, name, cover, roomType, roomTags, pref: {…, quittedAt}, id, createdTimeMS}]}
    expect(quitted.body.result.data).toEqual([
      expect.objectContaining({ _id: 'temp', id: 'temp', name: 'Temp', cover: 'http://example.com/c.png', roomType: 'group', roomTags: ['demo'], encrypted: false, createdTimeMS: expect.any(Number), pref: { tags: ['old'], quittedAt: expect.any(String), quittedAtMS: expect.any(Number) } }),
    ]);
    const row = quitted.body.result.data[0];
    expect(row.members).toBeUndefined();
    expect(row.pref.quittedAtMS).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(row.pref.quittedAt)).toBe(row.pref.quittedAtMS);
    expect((await as('carol').get('/rooms/quitted')).body.result.data.map((r: { _id: string }) => r._id)).toEqual(['temp']);
    expect((await as('alice').get('/rooms/quitted')).body.result.data).toEqual([]);
    // No longer a member: the room itself is closed to bob.
    expect(code(await as('bob').get('/rooms/temp'))).toBe('NOT_ROOM_MEMBER');
    // Rejoining (a public room) takes it off the list; the others' entries stay.
    expect((await as('bob').post('/rooms/temp/join')).status).toBe(200);
    expect((await as('bob').get('/rooms/quitted')).body.result.data).toEqual([]);
    expect((await as('carol').get('/rooms/quitted')).body.result.data).toHaveLength(1);
    // A deleted room is forgotten.
    expect((await admin(t.base, app).del('/rooms/temp')).status).toBe(200);
    expect((await as('carol').get('/rooms/quitted')).body.result.data).toEqual([]);
    // Without a user: USER_TOKEN_REQUIRED.
    const byKey = await admin(t.base, app).get('/rooms/quitted');
    expect({ status: byKey.status, code: code(byKey) }).toEqual({ status: 403, code: 'USER_TOKEN_REQUIRED' });
  });

  it('POST /auths/sign (v1): the same sandbox sign-in answered without the envelope; client key alone only when enabled', async () => {
    // api-doc admin/Admin-Create-Access-Token.md: POST /auths/sign {id, nickname, avatarUrl} → {authType, token, expirationDate, id, nickname, avatarUrl, exp}
    const body = { id: 'aaa', nickname: 'Alecia', avatarUrl: 'http://loremflickr.com/240/240/style?1627570215' };
    const byKey = await admin(t.base, app).post('/auths/sign', body);
    expect(byKey.status).toBe(200);
    expect(byKey.body).toEqual({ authType: 'Standalone JWT', token: expect.any(String), expirationDate: expect.any(String), id: 'aaa', nickname: 'Alecia', avatarUrl: body.avatarUrl, exp: expect.any(Number) });
    expect((await user(t.base, app, (byKey.body as unknown as { token: string }).token).get('/me')).body.result).toMatchObject({ id: 'aaa', nickname: 'Alecia' });
    const refused = await api(t.base, { 'IM-CLIENT-KEY': app.clientKey }).post('/auths/sign', body);
    expect({ status: refused.status, code: code(refused) }).toEqual({ status: 403, code: 'SANDBOX_DISABLED' });
    const opened = await api(sandbox.base, { 'IM-CLIENT-KEY': sandboxApp.clientKey }).post('/auths/sign', { id: 'v1-user' });
    expect(opened.status).toBe(200);
    expect((await user(sandbox.base, sandboxApp, (opened.body as unknown as { token: string }).token).get('/me')).body.result).toMatchObject({ id: 'v1-user' });
    expect(code(await api(sandbox.base, { 'IM-CLIENT-KEY': sandboxApp.clientKey }).post('/auths/sign', {}))).toBe('INVALID_INPUT');
    expect(code(await api(sandbox.base, {}).post('/auths/sign', { id: 'x' }))).toBe('MISSING_CLIENT_KEY');
  });

  /** Vue: the video picker's fallback → POST /files/video-info, form `file` + `autoUpload` {bucket: "chat", extra: {roomID}}. */
  async function videoInfo(who: string, bytes: Buffer, type: string, roomID: string) {
    const form = new FormData();
    form.append('file', new Blob([bytes], { type }), 'clip.mp4');
    form.append('autoUpload', JSON.stringify({ bucket: 'chat', extra: { roomID } }));
    const res = await fetch(`${t.base}/files/video-info`, { method: 'POST', headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who]! }, body: form });
    return { status: res.status, body: (await res.json()) as any };
  }
  const download = (who: string, path: string) => fetch(`${t.base}${path}`, { headers: { 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who]! } });

  it('POST /files/video-info stores the video in the room, reads size and duration from the MP4 container, and a placeholder thumbnail', async () => {
    const video = mp4();
    const res = await videoInfo('alice', video, 'video/mp4', 'desk');
    expect(res.status).toBe(200);
    const info = res.body.result;
    expect(info).toMatchObject({ originalId: expect.any(String), width: 1280, height: 720, duration: 4.5, thumbnailIsPlaceholder: true, mimetype: 'video/mp4', bytes: video.length });
    // The Vue SDK signs thumbnailUrl through fetchPresignedUrlByPath, which wants /files/<bucket>/<id>.
    expect(info.thumbnailUrl).toMatch(/^\/files\/chat\/[^/]+$/);
    expect(info.originalUrl).toBe(`/files/chat/${info.originalId}`);
    const original = await download('bob', info.originalUrl);
    expect(original.status).toBe(200);
    expect(Buffer.from(await original.arrayBuffer()).equals(video)).toBe(true);
    const thumb = await download('bob', info.thumbnailUrl);
    expect({ status: thumb.status, type: thumb.headers.get('content-type') }).toEqual({ status: 200, type: 'image/png' });
    const png = Buffer.from(await thumb.arrayBuffer());
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([320, 180]);
    // The room's members may read both; carol (not in desk) may not.
    expect((await download('carol', info.originalUrl)).status).toBe(403);
    // A portrait phone video (rotated track) reports its displayed size.
    expect((await videoInfo('alice', mp4(true), 'video/mp4', 'desk')).body.result).toMatchObject({ width: 720, height: 1280 });
    // The Vue SDK sends the video message with what it got (sendMessage: messageType video, originalUrl, thumbnailUrl, width, height, duration).
    const sent = await as('alice').post('/rooms/desk/message', { messageType: 'video', originalUrl: info.originalUrl, thumbnailUrl: info.thumbnailUrl, width: info.width, height: info.height, duration: info.duration });
    expect(sent.status).toBe(200);
  });

  it('POST /files/video-info: a container it cannot read gives nulls, a non-video is refused, a room not joined is refused', async () => {
    const webm = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(1000, 1)]);
    const unknown = await videoInfo('alice', webm, 'video/webm', 'desk');
    expect(unknown.status).toBe(200);
    expect(unknown.body.result).toMatchObject({ width: null, height: null, duration: null, originalUrl: expect.stringMatching(/^\/files\/chat\//) });
    const png = await videoInfo('alice', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), 'image/png', 'desk');
    expect({ status: png.status, code: png.body.error?.code }).toEqual({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    const outsider = await videoInfo('carol', mp4(), 'video/mp4', 'desk');
    expect({ status: outsider.status, code: outsider.body.error?.code }).toEqual({ status: 403, code: 'NOT_ROOM_MEMBER' });
  });
});
