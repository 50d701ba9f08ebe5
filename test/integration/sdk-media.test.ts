import type { Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../helpers/png.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';
import { once, signedIn, until } from '../helpers/sockets.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Every IMKIT message type as the official SDKs send it, and attachments as they upload them.
 * Bodies copy the SDKs' shapes:
 * - Vue: FUNTEKco/imkit-vue-sdk-nuxt `dist/` bundle (sendMessage / uploadMedia), recorded in
 *   /work/shared/spec/imkit-protocol.md §10 — `roomId` in the body, no `message` on media.
 * - Flutter: imkit/imkit-flutter-sdk `lib/models/im_message.dart` (`parameters`): image sends
 *   `originalUrl` + `images[]`, file/audio send `extra` as a JSON *string* and the file name in
 *   `message`; `lib/services/network/api/requests/im_file_request.dart` uploads one `file` part.
 */
describe.each(TRANSPORTS)('SDK message types and attachments over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  const tokens: Record<string, string> = {};
  const open: Socket[] = [];
  const as = (who: string) => user(t.base, app, tokens[who]!);
  const creds = (who: string) => ({ 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who]! });
  const png = makePng(64, 48, 3);

  beforeAll(async () => {
    t = await startTestServer(transport, { filesDir: mkdtempSync(path.join(tmpdir(), 'roomcast-sdk-media-')) });
    app = await t.createApp();
    for (const id of ['alice', 'bob', 'carol', 'dave']) tokens[id] = await t.createUser(app, id);
    const adm = admin(t.base, app);
    await adm.post('/rooms', { _id: 'pair', members: ['alice', 'bob'] });
    await adm.post('/rooms', { _id: 'other', members: ['alice', 'carol'] });
    await adm.post('/rooms', { _id: 'carols', members: ['carol', 'dave'] });
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.disconnect();
  });
  afterAll(() => t.close());

  const socketOf = (who: string): Promise<Socket> => signedIn(t.base, tokens[who]!, app.clientKey, open);

  const fileUrl = (id: string) => `${t.base}/files/chatserver-upload/${id}`;

  /** What each SDK posts for each type (no `message` on media, per the SDK sources cited above). */
  const bodies: Record<string, Record<string, unknown>> = {
    text: { roomId: 'pair', messageType: 'text', message: 'hi', reply: null, mentions: [] },
    imageVue: { roomId: 'pair', messageType: 'image', images: [{ originalUrl: 'https://cdn.example/a.jpg', thumbnailUrl: 'https://cdn.example/a_t.jpg', width: 640, height: 480 }] },
    imageNoThumb: { roomId: 'pair', messageType: 'image', images: [{ originalUrl: 'https://cdn.example/c.jpg', thumbnailUrl: '', width: 1, height: 1 }] },
    imageFlutter: { messageType: 'image', originalUrl: 'https://cdn.example/b.jpg', thumbnailUrl: 'https://cdn.example/b_t.jpg', width: 10, height: 20, images: [{ originalUrl: 'https://cdn.example/b.jpg', thumbnailUrl: 'https://cdn.example/b_t.jpg', width: 10, height: 20 }] },
    fileVue: { roomId: 'pair', messageType: 'file', originalUrl: 'https://cdn.example/r.pdf', extra: { mimeType: 'application/pdf', fileName: 'r.pdf', bytes: 1234, fileExtension: 'pdf' } },
    fileFlutter: { messageType: 'file', originalUrl: 'https://cdn.example/r.pdf', extra: '{"fileName":"r","fileExtension":"pdf","mimeType":"application/pdf","bytes":1234}', message: 'r' },
    audioVue: { roomId: 'pair', messageType: 'audio', duration: 3, originalUrl: 'https://cdn.example/v.webm', extra: { mimeType: 'audio/webm', fileName: 'v.webm', bytes: 99, fileExtension: 'webm' } },
    audioFlutter: { messageType: 'audio', originalUrl: 'https://cdn.example/v.m4a', extra: '{"fileName":"20260101_000000","fileExtension":"m4a","mimeType":"audio/m4a","bytes":99}', duration: 3, message: '20260101_000000' },
    videoVue: { roomId: 'pair', messageType: 'video', width: 320, height: 240, duration: 12, thumbnailUrl: 'https://cdn.example/v.jpg', originalUrl: 'https://cdn.example/v.mp4', video: { codec: 'h264' } },
    sticker: { roomId: 'pair', messageType: 'sticker', sticker: 'cat-3' },
    location: { roomId: 'pair', messageType: 'location', message: '1 Main St', latitude: 25.03, longitude: 121.56 },
    template: { messageType: 'template', template: { type: 'buttons', text: 'Pick one', actions: [{ type: 'message', label: 'A', text: 'A' }] } },
    flex: { messageType: 'flex', contents: { type: 'bubble', body: { type: 'box', contents: [{ type: 'text', text: 'Hello' }] } } },
    url: { messageType: 'url', message: 'look', url: 'https://example.com', extra: { title: 'Example' } },
    joinRoom: { messageType: 'joinRoom' },
    deleteMember: { messageType: 'deleteMember', extra: { members: [{ _id: 'x', nickname: 'X' }] } },
    addMember: { messageType: 'addMember', member: { _id: 'x', nickname: 'X' } },
    announcement: { messageType: 'announcement', message: 'Maintenance at noon' },
    payment: { messageType: 'payment', message: 'pay me', extra: { type: 'request', value: 1500, currency: 'NTD' } },
  };

  it('accepts, stores and delivers every type as sent, on REST and on the socket', async () => {
    const bob = await socketOf('bob');
    const alice = await socketOf('alice');
    for (const [name, body] of Object.entries(bodies)) {
      const arrived = once<Record<string, unknown>>(bob, 'chat message');
      const sent = await as('alice').post('/rooms/pair/message', body);
      expect(sent.status, `${name}: ${JSON.stringify(sent.body)}`).toBe(200);
      const [delivered] = await arrived;
      const { roomId: _r, reply: _p, mentions: _m, ...expected } = body;
      expect(delivered, name).toMatchObject({ ...expected, _id: sent.body.result._id, room: 'pair', sender: { id: 'alice' } });
      if (body.message === undefined) expect(delivered!.message, name).toBeUndefined();
    }
    // The socket path takes the same bodies (with `room`), acked with the stored message.
    const arrived = once<Record<string, unknown>>(bob, 'chat message');
    const ack = (await alice.timeout(5000).emitWithAck('chat message', { room: 'pair', ...bodies.imageVue })) as { RC: number; result: Record<string, unknown> };
    expect(ack.RC).toBe(0);
    expect(ack.result).toMatchObject({ messageType: 'image', images: (bodies.imageVue as { images: unknown[] }).images });
    expect((await arrived)[0]).toMatchObject({ _id: ack.result._id, messageType: 'image' });
    // History gives them back as stored.
    const history = await as('bob').get('/rooms/pair/messages/v3?limit=50');
    const byType = new Map(history.body.result.data.map((m: { messageType: string }) => [m.messageType, m]));
    expect(byType.get('sticker')).toMatchObject({ sticker: 'cat-3' });
    expect(byType.get('location')).toMatchObject({ latitude: 25.03, longitude: 121.56, message: '1 Main St' });
    expect(byType.get('flex')).toMatchObject({ contents: bodies.flex!.contents });
  });

  it('refuses a message without the field its type needs, naming it', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ messageType: 'text' }, 'message'],
      [{}, 'message'],
      [{ messageType: 'image' }, 'images or originalUrl'],
      [{ messageType: 'image', images: [] }, 'images or originalUrl'],
      [{ messageType: 'image', images: [{ width: 3 }] }, 'images.0.originalUrl'],
      [{ messageType: 'file', extra: { fileName: 'x' } }, 'originalUrl or url'],
      [{ messageType: 'audio', duration: 3 }, 'originalUrl or url'],
      [{ messageType: 'video', thumbnailUrl: 'https://cdn.example/t.jpg' }, 'originalUrl or url'],
      [{ messageType: 'file', originalUrl: '' }, 'originalUrl or url'],
      [{ messageType: 'image', images: [{ originalUrl: '' }] }, 'images.0.originalUrl'],
      [{ messageType: 'sticker' }, 'sticker'],
      [{ messageType: 'location', latitude: 1 }, 'longitude'],
      [{ messageType: 'location', latitude: 91, longitude: 0 }, 'latitude'],
      [{ messageType: 'image', originalUrl: 42 }, 'originalUrl'],
      [{ messageType: 'flex' }, 'contents'],
      [{ messageType: 'custom-thing' }, 'message'],
    ];
    for (const [body, field] of cases) {
      const res = await as('alice').post('/rooms/pair/message', body);
      expect({ status: res.status, code: res.body.error?.code }, JSON.stringify(body)).toEqual({ status: 400, code: 'INVALID_INPUT' });
      expect(res.body.RM.startsWith(`${field}:`), `${JSON.stringify(body)} → ${res.body.RM}`).toBe(true);
    }
  });

  /** The Flutter SDK's upload: one `file` part, typed application/octet-stream, no `extra`. */
  async function flutterUpload(who: string, bytes: Buffer, filename: string) {
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/octet-stream' }), filename);
    const res = await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: creds(who), body: form });
    return { status: res.status, body: (await res.json()) as any };
  }
  const read = async (who: string, id: string) => (await fetch(fileUrl(id), { headers: creds(who) })).status;

  it('types an octet-stream upload from its bytes and checks it against the allow-list', async () => {
    const up = await flutterUpload('alice', png, 'image_picker_1234.jpg');
    expect(up.status).toBe(200);
    expect(up.body.result).toMatchObject({ mimetype: 'image/png', length: png.length, client: 'alice', extra: {} });
    const res = await fetch(fileUrl(up.body.result._id), { headers: creds('alice') });
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer()).equals(png)).toBe(true);
    const m4a = Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypM4A '), Buffer.alloc(40)]);
    expect((await flutterUpload('alice', m4a, 'voice.m4a')).body.result.mimetype).toBe('audio/mp4');
    const pdf = Buffer.from('%PDF-1.7\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n');
    expect((await flutterUpload('alice', pdf, 'r.pdf')).body.result.mimetype).toBe('application/pdf');
    const text = Buffer.from('plain notes, nothing binary\n');
    expect((await flutterUpload('alice', text, 'notes.txt')).body.result.mimetype).toBe('text/plain');
    // An executable is typed as one and refused; bytes nobody recognises stay octet-stream and are refused too.
    const exe = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(100, 0x90)]);
    const refused = await flutterUpload('alice', exe, 'image.jpg');
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(refused.body.RM).toContain('application/x-msdownload');
    const unknown = await flutterUpload('alice', Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 0xfe, 0xfd]), 'blob.bin');
    expect(unknown.status).toBe(415);
  });

  it('a file uploaded without a room becomes readable in each room a message referencing it was sent to, and nowhere else', async () => {
    const up = await flutterUpload('alice', png, 'photo.png');
    const id = up.body.result._id as string;
    expect(await read('alice', id)).toBe(200);
    expect(await read('bob', id)).toBe(403);
    expect(await read('carol', id)).toBe(403);
    // Alice sends it to bob (Flutter image shape, absolute URL as the SDK builds it).
    const bob = await socketOf('bob');
    const arrived = once<Record<string, unknown>>(bob, 'chat message');
    const image = { originalUrl: fileUrl(id), thumbnailUrl: fileUrl(id), width: 64, height: 48 };
    const sent = await as('alice').post('/rooms/pair/message', { messageType: 'image', ...image, images: [image] });
    expect(sent.status).toBe(200);
    await arrived;
    // Readable by bob the moment the message arrives; not by carol, who is not in that room.
    expect(await read('bob', id)).toBe(200);
    expect(await read('carol', id)).toBe(403);
    const signed = await fetch(`${fileUrl(id)}?signedUrlOnly=true`, { headers: creds('bob') });
    expect(signed.status).toBe(200);
    // Bob cannot pass it on into a room he is not in; carol, who cannot read it, grants nothing
    // by naming it in her own room.
    const leak = await as('carol').post('/rooms/carols/message', { messageType: 'file', originalUrl: `/files/chatserver-upload/${id}` });
    expect(leak.status).toBe(200);
    expect(await read('dave', id)).toBe(403);
    expect(await read('carol', id)).toBe(403);
    // Alice shares it in the other room too (a relative URL with a query, as a forwarded message may carry).
    await as('alice').post('/rooms/other/message', { messageType: 'file', originalUrl: `/files/chatserver-upload/${id}?download=1`, message: 'photo.png' });
    expect(await read('carol', id)).toBe(200);
    expect(await read('dave', id)).toBe(403);
    // Metadata follows the same rule.
    const meta = await fetch(`${fileUrl(id)}/metadata`, { headers: creds('carol') });
    expect(meta.status).toBe(200);
    // Leaving the room ends the access that room gave.
    await admin(t.base, app).post('/rooms/pair/delete/members', { members: ['bob'] });
    await until(async () => (await read('bob', id)) === 403);
  });
});
