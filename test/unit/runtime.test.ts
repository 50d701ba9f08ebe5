import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { uwsAbis, uwsAvailable, uwsUnavailableReason } from '../../src/http/uws-native.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';

/**
 * The native engine is detected, never assumed: the installed uWebSockets.js build has Linux
 * (glibc) binaries for Node ABI 93, 108 and 115 (Node 16, 18, 20) only, so Node 20 on glibc
 * gets it and Node 22 (ABI 127) and 24 (ABI 137) fall back to ws with one log line.
 */
describe('runtime detection of the native uWebSockets.js engine', () => {
  const abi = Number(process.versions.modules);
  const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime);

  it('matches the support matrix the README states', () => {
    if (process.platform === 'linux' && process.arch === 'x64') expect(uwsAbis()).toEqual([93, 108, 115]);
    const expected = uwsAbis().includes(abi) && (process.platform !== 'linux' || glibc);
    expect(uwsAvailable()).toBe(expected);
    if (!expected) expect(uwsUnavailableReason()).toMatch(new RegExp(`ABI ${abi}|musl`));
  });

  it('auto picks the native engine where it loads, else ws with one clear log line', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _e, done) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), done()) });
    const config = loadConfig({}, { port: 0, transport: 'auto', demo: false, logLevel: 'info' });
    const server = await startServer(config, createLogger('info', sink));
    await server.close();
    const mentions = lines.filter((l) => l.includes('uWebSockets.js'));
    if (uwsAvailable()) {
      expect(server.transport).toBe('uws');
      expect(mentions).toEqual([]);
    } else {
      expect(server.transport).toBe('node');
      expect(mentions).toHaveLength(1);
      expect(JSON.parse(mentions[0]!)).toMatchObject({ level: 40, msg: expect.stringContaining('using the node:http + ws transport') });
    }
  });

  it('an explicit uws transport where it cannot load fails with the reason', async () => {
    if (uwsAvailable()) return expect(uwsUnavailableReason()).toBeUndefined();
    const config = loadConfig({}, { port: 0, transport: 'uws', demo: false, logLevel: 'silent' });
    await expect(startServer(config, createLogger('silent'))).rejects.toThrow(/native uWebSockets\.js is not available for Node v\d+/);
  });
});
