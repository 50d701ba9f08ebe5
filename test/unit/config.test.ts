import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3100, host: '127.0.0.1', transport: 'auto', operatorSecret: '', demo: true, corsOrigins: ['*'] });
  });

  it('reads environment variables, coercing types', () => {
    const c = loadConfig({ ROOMCAST_PORT: '8080', ROOMCAST_TRANSPORT: 'node', ROOMCAST_TRUST_PROXY: 'true', ROOMCAST_CORS_ORIGINS: 'https://a, https://b' });
    expect(c).toMatchObject({ port: 8080, transport: 'node', trustProxy: true, corsOrigins: ['https://a', 'https://b'] });
  });

  it('names the setting and the problem for bad values', () => {
    expect(() => loadConfig({ ROOMCAST_PORT: 'eighty' })).toThrow(/ROOMCAST_PORT: .*"eighty"/);
    expect(() => loadConfig({ ROOMCAST_PORT: '70000' })).toThrow(ConfigError);
    expect(() => loadConfig({ ROOMCAST_TRANSPORT: 'carrier-pigeon' })).toThrow(/ROOMCAST_TRANSPORT/);
    expect(() => loadConfig({ ROOMCAST_TRUST_PROXY: 'maybe' })).toThrow(/ROOMCAST_TRUST_PROXY/);
  });

  it('never echoes a value that may hold a credential', () => {
    let message = '';
    try {
      loadConfig({ ROOMCAST_REDIS_URL: 'http://user:hunter2@redis.internal:6379' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/ROOMCAST_REDIS_URL/);
    expect(message).not.toContain('hunter2');
  });

  it('reads a JSON file, which the environment overrides, and refuses unknown keys', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-config-'));
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ port: 4000, host: '0.0.0.0', corsOrigins: ['https://x'] }));
    expect(loadConfig({ ROOMCAST_CONFIG: file })).toMatchObject({ port: 4000, host: '0.0.0.0', corsOrigins: ['https://x'] });
    expect(loadConfig({ ROOMCAST_CONFIG: file, ROOMCAST_PORT: '5000' }).port).toBe(5000);
    writeFileSync(file, JSON.stringify({ prot: 4000 }));
    expect(() => loadConfig({ ROOMCAST_CONFIG: file })).toThrow(/prot in .*unknown setting/);
    writeFileSync(file, JSON.stringify({ port: 'x' }));
    expect(() => loadConfig({ ROOMCAST_CONFIG: file })).toThrow(/port in /);
    writeFileSync(file, '{ not json');
    expect(() => loadConfig({ ROOMCAST_CONFIG: file })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ ROOMCAST_CONFIG: path.join(dir, 'missing.json') })).toThrow(/cannot read/);
  });

  it('drain timings and TLS: defaults, and a TLS pair that is half set or unreadable is refused by name', () => {
    expect(loadConfig({})).toMatchObject({ drainDelayMs: 2000, drainWindowMs: 2000, shutdownTimeoutMs: 8000, tlsCertFile: '', tlsKeyFile: '' });
    const dir = mkdtempSync(path.join(tmpdir(), 'roomcast-tls-config-'));
    const cert = path.join(dir, 'cert.pem');
    writeFileSync(cert, 'not checked here: only readability');
    expect(() => loadConfig({ ROOMCAST_TLS_CERT_FILE: cert })).toThrow(/ROOMCAST_TLS_KEY_FILE: required when ROOMCAST_TLS_CERT_FILE is set/);
    expect(() => loadConfig({ ROOMCAST_TLS_KEY_FILE: cert })).toThrow(/ROOMCAST_TLS_CERT_FILE: required/);
    expect(() => loadConfig({ ROOMCAST_TLS_CERT_FILE: cert, ROOMCAST_TLS_KEY_FILE: path.join(dir, 'missing.key') })).toThrow(
      /ROOMCAST_TLS_KEY_FILE: cannot read .*missing\.key: ENOENT/,
    );
    expect(loadConfig({ ROOMCAST_TLS_CERT_FILE: cert, ROOMCAST_TLS_KEY_FILE: cert }).tlsKeyFile).toBe(cert);
    expect(() => loadConfig({ ROOMCAST_SHUTDOWN_TIMEOUT_MS: '0' })).toThrow(/ROOMCAST_SHUTDOWN_TIMEOUT_MS/);
  });
});
