import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePng } from '../helpers/png.js';
import { admin, startTestServer, type TestApp, type TestServer, TRANSPORTS, user } from '../helpers/server.js';

const MAX_UPLOAD = 256 * 1024;

/** Every file under a directory, relative paths. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)));
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe.each(TRANSPORTS)('media uploads over %s', (transport) => {
  let t: TestServer;
  let app: TestApp;
  let dir: string;
  const tokens: Record<string, string> = {};
  const creds = (who: string) => ({ 'IM-CLIENT-KEY': app.clientKey, 'IM-Authorization': tokens[who]! });
  const png = makePng(160, 120);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'roomcast-files-'));
    t = await startTestServer(transport, { filesDir: dir, maxUploadBytes: MAX_UPLOAD, signedUrlTtlSeconds: 2 });
    app = await t.createApp();
    for (const id of ['alice', 'bob', 'carol']) tokens[id] = await t.createUser(app, id);
    await admin(t.base, app).post('/rooms', { _id: 'photos', name: 'Photos', members: ['alice', 'bob'] });
  });
  afterAll(() => t.close());

  async function upload(who: string, opts: { bucket?: string; file?: Buffer; type?: string; name?: string; extra?: unknown; extraFirst?: boolean; noFile?: boolean } = {}) {
    const form = new FormData();
    const extra = opts.extra === undefined ? JSON.stringify({ roomId: 'photos' }) : typeof opts.extra === 'string' ? opts.extra : JSON.stringify(opts.extra);
    if (opts.extraFirst !== false) form.append('extra', extra);
    if (!opts.noFile) form.append('file', new Blob([opts.file ?? png], { type: opts.type ?? 'image/png' }), opts.name ?? 'sunset.png');
    if (opts.extraFirst === false) form.append('extra', extra);
    const res = await fetch(`${t.base}/files/${opts.bucket ?? 'chatserver-upload'}`, { method: 'POST', headers: creds(who), body: form });
    return { status: res.status, body: (await res.json()) as any };
  }

  it('uploads a real image with client credentials and downloads it with headers and via a signed link', async () => {
    const up = await upload('alice');
    expect(up.status).toBe(200);
    const file = up.body.result;
    expect(file).toMatchObject({
      _id: expect.any(String), length: png.length, md5: md5(png), filename: 'sunset.png', mimetype: 'image/png',
      client: 'alice', bucketName: 'chatserver-upload', extra: { roomId: 'photos' }, uploadDate: expect.any(String), uploadDateMS: expect.any(Number),
    });
    // The member bob downloads with headers.
    const res = await fetch(`${t.base}/files/chatserver-upload/${file._id}`, { headers: creds('bob') });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Number(res.headers.get('content-length'))).toBe(png.length);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(md5(bytes)).toBe(file.md5);
    expect(bytes.equals(png)).toBe(true);
    // A signed link works with no headers at all (an <img src>), for signedUrlOnly=1 and =true.
    for (const flag of ['1', 'true']) {
      const signed = await fetch(`${t.base}/files/chatserver-upload/${file._id}?signedUrlOnly=${flag}`, { headers: creds('bob') });
      const { url } = ((await signed.json()) as any).result;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\/chatserver-upload\/.+sig=/);
      const plain = await fetch(url);
      expect(plain.status).toBe(200);
      expect(Buffer.from(await plain.arrayBuffer()).equals(png)).toBe(true);
    }
  });

  it('HEAD and metadata answer without the body; extra may come after the file', async () => {
    const up = await upload('alice', { extraFirst: false, extra: { roomID: 'photos', caption: 'late extra' } });
    expect(up.body.result.extra).toEqual({ roomID: 'photos', caption: 'late extra' });
    const id = up.body.result._id;
    const head = await fetch(`${t.base}/files/chatserver-upload/${id}`, { method: 'HEAD', headers: creds('alice') });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(png.length);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    const meta = await user(t.base, app, tokens.bob!).get(`/files/chatserver-upload/${id}/metadata`);
    expect(meta.body.result).toMatchObject({ _id: id, length: png.length, md5: md5(png) });
  });

  it('refuses non-members: upload to a room and download of its files', async () => {
    const before = filesUnder(dir).length;
    const up = await upload('carol');
    expect(up.status).toBe(403);
    expect(up.body.error.code).toBe('NOT_ROOM_MEMBER');
    const late = await upload('carol', { extraFirst: false });
    expect(late.body.error.code).toBe('NOT_ROOM_MEMBER');
    expect(filesUnder(dir).length).toBe(before);
    const mine = (await upload('alice')).body.result._id;
    const res = await fetch(`${t.base}/files/chatserver-upload/${mine}`, { headers: creds('carol') });
    expect(res.status).toBe(403);
    expect(((await res.json()) as any).error.code).toBe('NOT_ROOM_MEMBER');
    // A file with no room: the uploader and the API key only.
    const privateFile = (await upload('alice', { extra: {} })).body.result._id;
    expect((await fetch(`${t.base}/files/chatserver-upload/${privateFile}`, { headers: creds('bob') })).status).toBe(403);
    expect((await fetch(`${t.base}/files/chatserver-upload/${privateFile}`, { headers: creds('alice') })).status).toBe(200);
    expect((await fetch(`${t.base}/files/chatserver-upload/${privateFile}`, { headers: { 'IM-API-KEY': app.apiKey } })).status).toBe(200);
  });

  it('DELETE by the uploader or the API key only', async () => {
    const id = (await upload('alice')).body.result._id;
    const before = filesUnder(dir).length;
    expect((await user(t.base, app, tokens.bob!).del(`/files/chatserver-upload/${id}`)).body.error.code).toBe('NOT_UPLOADER');
    expect((await user(t.base, app, tokens.alice!).del(`/files/chatserver-upload/${id}`)).body.result).toEqual({ n: 1, ok: 1 });
    expect(filesUnder(dir).length).toBe(before - 1);
    expect((await user(t.base, app, tokens.alice!).get(`/files/chatserver-upload/${id}/metadata`)).body.error.code).toBe('FILE_NOT_FOUND');
    const other = (await upload('bob')).body.result._id;
    expect((await admin(t.base, app).del(`/files/chatserver-upload/${other}`)).status).toBe(200);
  });

  it('bad input: each refusal is clean, leaves no stray file and does not hurt the node', async () => {
    const before = filesUnder(dir).sort();
    const big = makePng(600, 400, 7); // well over MAX_UPLOAD
    expect(big.length).toBeGreaterThan(MAX_UPLOAD);
    const tooLarge = await upload('alice', { file: big });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.error.code).toBe('FILE_TOO_LARGE');
    const noFile = await upload('alice', { noFile: true });
    expect({ status: noFile.status, code: noFile.body.error.code }).toEqual({ status: 400, code: 'FILE_REQUIRED' });
    const badType = await upload('alice', { type: 'application/x-msdownload', name: 'setup.exe' });
    expect({ status: badType.status, code: badType.body.error.code }).toEqual({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    const badExtra = await upload('alice', { extra: '{not json' });
    expect({ status: badExtra.status, code: badExtra.body.error.code }).toEqual({ status: 400, code: 'INVALID_INPUT' });
    for (const bucket of ['..', '..%2F..%2Fetc', '.hidden', 'a%2Fb']) {
      const r = await upload('alice', { bucket });
      expect([400, 404], bucket).toContain(r.status);
      if (r.status === 400) expect(r.body.error.code).toBe('INVALID_PATH');
    }
    const traversal = await fetch(`${t.base}/files/chatserver-upload/..%2F..%2Fpackage.json`, { headers: creds('alice') });
    expect(traversal.status).toBe(400);
    const notMultipart = await fetch(`${t.base}/files/chatserver-upload`, { method: 'POST', headers: { ...creds('alice'), 'content-type': 'application/json' }, body: '{}' });
    expect(((await notMultipart.json()) as any).error.code).toBe('MULTIPART_REQUIRED');
    const truncated = await fetch(`${t.base}/files/chatserver-upload`, {
      method: 'POST',
      headers: { ...creds('alice'), 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\npartial-bytes-without-end',
    });
    expect(truncated.status).toBeGreaterThanOrEqual(400);
    expect(truncated.status).toBeLessThan(500);
    const after = filesUnder(dir).sort();
    expect(after).toEqual(before);
    expect(after.some((f) => f.endsWith('.part'))).toBe(false);
    expect((await upload('alice')).status).toBe(200);
  });

  it('signed links: a wrong signature and an expired link are 403', async () => {
    const id = (await upload('alice')).body.result._id;
    const signed = await fetch(`${t.base}/files/chatserver-upload/${id}?signedUrlOnly=1`, { headers: creds('alice') });
    const { url } = ((await signed.json()) as any).result;
    const wrong = await fetch(url.replace(/sig=[^&]+/, 'sig=AAAA'));
    expect(wrong.status).toBe(403);
    expect(((await wrong.json()) as any).error.code).toBe('INVALID_SIGNATURE');
    const otherFile = await fetch(url.replace(id, (await upload('alice')).body.result._id));
    expect(otherFile.status).toBe(403);
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as any).error.code).toBe('LINK_EXPIRED');
  });
});
