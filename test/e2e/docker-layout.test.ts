import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type NodeProcess } from '../helpers/cluster.js';
import { makePng } from '../helpers/png.js';
import { until } from '../helpers/sockets.js';

/**
 * No container engine runs here, so this reproduces what the Dockerfile builds: the app in a
 * root-owned, read-only directory, a writable `data/` owned by the unprivileged user (uid 1000,
 * the `node` user of the official image), the server run as that user from that directory with
 * the image's settings only (no ROOMCAST_FILES_DIR: the defaults must work), then an upload, a
 * drained restart, and an upload again. The Dockerfile lines this layout copies are checked
 * first, so the test fails if the image drifts from it.
 */
const root = path.resolve(import.meta.dirname, '../..');
const IMAGE_UID = 1000;
const asRoot = process.getuid?.() === 0;
const user = asRoot ? { uid: IMAGE_UID, gid: IMAGE_UID } : {};

/** Makes every file and directory under `dir` read-only (the app directory in the image). */
function readOnly(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = path.join(entry.parentPath, entry.name);
    if (entry.isSymbolicLink()) continue;
    chmodSync(p, entry.isDirectory() ? 0o555 : 0o444);
  }
  chmodSync(dir, 0o555);
}

describe('the Docker image layout (read-only app directory, non-root user, default settings)', () => {
  let app: string;
  let node: NodeProcess | undefined;

  beforeAll(() => {
    const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    // The runtime stage this test reproduces.
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-bookworm-slim$/m); // a pinned Node
    expect(dockerfile).toMatch(/^WORKDIR \/app$/m);
    expect(dockerfile).toMatch(/^RUN mkdir -p \/app\/data\/files && chown -R node:node \/app\/data$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
    expect(dockerfile).not.toMatch(/ROOMCAST_FILES_DIR/); // the defaults must do

    app = mkdtempSync(path.join(tmpdir(), 'roomcast-image-'));
    chmodSync(app, 0o755);
    for (const part of ['package.json', 'dist', 'static']) cpSync(path.join(root, part), path.join(app, part), { recursive: true });
    symlinkSync(path.join(root, 'node_modules'), path.join(app, 'node_modules'));
    mkdirSync(path.join(app, 'data/files'), { recursive: true });
    if (asRoot) {
      chownSync(path.join(app, 'data'), IMAGE_UID, IMAGE_UID);
      chownSync(path.join(app, 'data/files'), IMAGE_UID, IMAGE_UID);
    }
    readOnly(path.join(app, 'dist'));
    readOnly(path.join(app, 'static'));
    chmodSync(path.join(app, 'package.json'), 0o444);
    chmodSync(app, 0o555);
  });

  afterAll(async () => {
    await node?.kill('SIGKILL');
    if (app) {
      chmodSync(app, 0o755);
      for (const part of ['dist', 'static']) spawnSync('chmod', ['-R', 'u+w', path.join(app, part)]);
      rmSync(app, { recursive: true, force: true });
    }
  });

  /** Starts the server as the image does; returns the demo credentials it prints. */
  async function start(): Promise<{ clientKey: string; token: string; base: string }> {
    // Empty values: the defaults (data/roomcast.db, data/files under the app directory).
    node = await startNode('image', { NODE_ENV: 'production', ROOMCAST_DEMO: '', ROOMCAST_DATABASE_PATH: '', ROOMCAST_FILES_DIR: '' }, { cwd: app, ...user, main: path.join(app, 'dist/main.js') });
    await until(() => node!.output().includes('user token'), 5000);
    const out = node.output();
    return {
      clientKey: out.match(/client key\s+(\S+)/)![1]!,
      token: out.match(/user token\s+(\S+)/)![1]!,
      base: node.base,
    };
  }

  async function upload(creds: { clientKey: string; token: string; base: string }, name: string) {
    // Multipart with a `file` part, as the SDKs' upload sends it (see test/integration/files.test.ts).
    const form = new FormData();
    form.append('file', new Blob([makePng(32, 32)], { type: 'image/png' }), name);
    const res = await fetch(`${creds.base}/files/chatserver-upload`, {
      method: 'POST',
      headers: { 'IM-CLIENT-KEY': creds.clientKey, 'IM-Authorization': creds.token },
      body: form,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  it('the unprivileged user cannot write the app directory', () => {
    const probe = spawnSync(process.execPath, ['-e', "require('fs').writeFileSync('probe', 'x')"], { cwd: app, ...user, encoding: 'utf8' });
    expect(probe.status).not.toBe(0);
    expect(probe.stderr).toContain('EACCES');
  });

  it('uploads as the non-root user with default settings, drains on SIGTERM, restarts and uploads again', async () => {
    const first = await start();
    const up = await upload(first, 'before.png');
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    const stored = readdirSync(path.join(app, 'data/files'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
    if (asRoot) expect(statSync(path.join(app, 'data/roomcast.db')).uid).toBe(IMAGE_UID);
    expect(stored.length).toBe(1);
    if (asRoot) expect(statSync(path.join(stored[0]!.parentPath, stored[0]!.name)).uid).toBe(IMAGE_UID);

    node!.signal('SIGTERM');
    expect(await node!.exited).toBe(0);

    const second = await start();
    // The data survived the restart: the same demo credentials, and the first upload downloads.
    expect(second.token).toBe(first.token);
    const kept = await fetch(`${second.base}/files/chatserver-upload/${up.body.result._id}`, {
      headers: { 'IM-CLIENT-KEY': second.clientKey, 'IM-Authorization': second.token },
    });
    expect(kept.status).toBe(200);
    const again = await upload(second, 'after.png');
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const res = await fetch(`${second.base}/files/chatserver-upload/${again.body.result._id}`, {
      headers: { 'IM-CLIENT-KEY': second.clientKey, 'IM-Authorization': second.token },
    });
    expect(res.status).toBe(200);
    expect(readdirSync(path.join(app, 'data/files'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length).toBe(2);
  });
});
