import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'dist/main.js');
const cli = path.join(root, 'dist/cli.js');
const dataDirs: string[] = [];
function freshDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-start-'));
  dataDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts the compiled server as `npm start` does and waits for the demo banner. */
function startCompiled(env: Record<string, string>, dataDir = freshDataDir()): Promise<{ child: ChildProcess; output: () => string; port: number }> {
  // Data in a directory of the test's own (as ./data would be for `npm start`).
  const data = { ROOMCAST_DATABASE_PATH: path.join(dataDir, 'roomcast.db'), ROOMCAST_FILES_DIR: path.join(dataDir, 'files') };
  const child = spawn(process.execPath, [main], { env: { ...process.env, ROOMCAST_PORT: '0', ...data, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a server behind a failed start
      reject(new Error(`server did not start:\n${out}`));
    }, 15_000);
    const check = () => {
      const m = /roomcast is running at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      // The whole curl line has arrived (log lines may come before or after the banner).
      if (m && /\n\s*curl [^\n]*'\n/.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out, port: Number(m[1]) });
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
}

describe('the README quick start (compiled server)', () => {
  let child: ChildProcess | undefined;
  beforeAll(() => {
    if (!existsSync(main)) throw new Error('dist/ is missing: run `npm test`, which builds first');
  });
  afterEach(() => {
    child?.kill('SIGTERM');
    child = undefined;
  });

  it('prints the demo credentials and a curl line that works as printed; logs hold no secret', async () => {
    const started = await startCompiled({});
    child = started.child;
    const out = started.output();
    const curlLine = out.split('\n').find((l) => l.trim().startsWith('curl '))!.trim();
    const { stdout } = await run('sh', ['-c', curlLine]);
    const body = JSON.parse(stdout);
    expect(body).toMatchObject({ RC: 0, RM: 'OK', result: { totalCount: 1 } });
    expect(body.result.data[0]).toMatchObject({ message: 'Welcome to roomcast!', sender: { id: 'bob' } });

    const apiKey = /API key\s+(\S+)/.exec(out)![1]!;
    const clientKey = /client key\s+(\S+)/.exec(out)![1]!;
    const token = /user token\s+(\S+)/.exec(out)![1]!;
    // Requests with bad and good secrets, then: no log line carries one.
    await fetch(`http://127.0.0.1:${started.port}/admin/clients`, { headers: { 'IM-API-KEY': apiKey } });
    await fetch(`http://127.0.0.1:${started.port}/me`, { headers: { 'IM-CLIENT-KEY': clientKey, 'IM-Authorization': 'wrong' } });
    const logLines = started.output().split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) {
      for (const secret of [apiKey, clientKey, token]) expect(line).not.toContain(secret);
    }
  });

  it('keeps its data: the demo is created on the first start only, printed again, and the banner says where data lives', async () => {
    const dir = freshDataDir();
    const first = await startCompiled({}, dir);
    child = first.child;
    const apiKey = /API key\s+(\S+)/.exec(first.output())![1]!;
    expect(first.output()).toContain(`data: ${path.join(dir, 'roomcast.db')}`);
    expect(statSync(path.join(dir, 'demo-credentials.json')).mode & 0o777).toBe(0o600);
    const stopped = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGTERM');
    await stopped;

    const second = await startCompiled({}, dir);
    child = second.child;
    const out = second.output();
    expect(out).toContain('Demo application (created on the first start, kept in the data)');
    expect(/API key\s+(\S+)/.exec(out)![1]).toBe(apiKey);
    const curlLine = out.split('\n').find((l) => l.trim().startsWith('curl '))!.trim();
    const body = JSON.parse((await run('sh', ['-c', curlLine])).stdout);
    // One welcome message: the demo was not provisioned a second time.
    expect(body.result.totalCount).toBe(1);
    const apps = await fetch(`http://127.0.0.1:${second.port}/admin/clients`, { headers: { 'IM-API-KEY': apiKey } });
    expect(apps.status).toBe(200);
  });

  it('an invalid setting stops the server with a message naming it', async () => {
    const result = await run(process.execPath, [main], { env: { ...process.env, ROOMCAST_PORT: 'nope' } }).catch((e) => e);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ROOMCAST_PORT/);
  });

  it('the operator CLI creates, lists and deletes applications', async () => {
    const started = await startCompiled({ ROOMCAST_OPERATOR_SECRET: 'cli-secret' });
    child = started.child;
    const env = { ...process.env, ROOMCAST_OPERATOR_SECRET: 'cli-secret', ROOMCAST_URL: `http://127.0.0.1:${started.port}` };
    const created = JSON.parse((await run(process.execPath, [cli, 'apps', 'create', '--name', 'shop', '--domain', 'chat.shop.test'], { env })).stdout);
    expect(created).toMatchObject({ name: 'shop', domains: ['chat.shop.test'], apiKey: expect.any(String), clientKey: expect.any(String) });
    const listed = JSON.parse((await run(process.execPath, [cli, 'apps', 'list'], { env })).stdout);
    expect(listed.data.map((a: { name: string }) => a.name)).toEqual(['demo', 'shop']);
    await run(process.execPath, [cli, 'apps', 'delete', created.id], { env });
    const after = JSON.parse((await run(process.execPath, [cli, 'apps', 'list'], { env })).stdout);
    expect(after.data.map((a: { name: string }) => a.name)).toEqual(['demo']);
    const wrong = await run(process.execPath, [cli, 'apps', 'list'], { env: { ...env, ROOMCAST_OPERATOR_SECRET: 'nope' } }).catch((e) => e);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('INVALID_OPERATOR_SECRET');
  });
});
