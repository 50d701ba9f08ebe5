/**
 * Input generators for the fuzz suites: a seeded PRNG, random and mutated JSON values, request
 * texts and Engine.IO/Socket.IO frames built from SDK-shaped seeds.
 */

/** FUZZ_SCALE multiplies every count (CI: 1; `npm run fuzz`: 20 unless set). */
export const SCALE = Math.max(0.01, Number(process.env.FUZZ_SCALE ?? '1') || 1);
export const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** xorshift32: reproducible runs from FUZZ_SEED (printed by the suites). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const NASTY_STRINGS = [
  '', ' ', '__proto__', 'constructor', 'toString', 'prototype', 'hasOwnProperty', '..', '../..', '%00', '\u0000', '\ud800',
  'dm:x', 'g', 'alice', 'bob', '_all', 'recall', 'x'.repeat(129), '😀', '<script>alert(1)</script>', '${x}', '{"a":1}',
  '-1', '1e309', 'NaN', 'null', 'true', '8640000000000001',
];
const NASTY_NUMBERS = [0, -0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, 0.5, 8640000000000001, Number.MAX_SAFE_INTEGER];

export function randomString(r: Rng): string {
  if (r.chance(0.5)) return r.pick(NASTY_STRINGS);
  if (r.chance(0.002)) return 'y'.repeat(r.int(200_000));
  let s = '';
  const n = r.int(24);
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.chance(0.9) ? 32 + r.int(95) : r.int(0xffff));
  return s;
}

/** A random JSON-able value, sometimes deeply nested or wide. */
export function randomValue(r: Rng, depth = 0): unknown {
  const roll = r.int(12);
  if (depth > 3 && roll > 3) return randomString(r);
  switch (roll) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick(NASTY_NUMBERS);
    case 3: return randomString(r);
    case 4: return nested(1 + r.int(80));
    case 5:
      // Wide arrays hold primitives only, so a value's size stays bounded.
      if (r.chance(0.02)) return Array.from({ length: 1500 }, (_, i) => i);
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      if (r.chance(0.001)) {
        for (let i = 0; i < 1001; i++) o[`k${i}`] = i;
        return o;
      }
      const n = r.int(4);
      for (let i = 0; i < n; i++) {
        const key = r.chance(0.3) ? r.pick(['__proto__', 'constructor', '_id', 'room', 'message', 'messageType', 'reply', 'extra', 'sender']) : randomString(r).slice(0, 40);
        setKey(o, key, randomValue(r, depth + 1));
      }
      return o;
    }
  }
}

/** Sets a key as data (a `__proto__` key too, as JSON.parse would make it). */
function setKey(o: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));

/** A seed object with some fields replaced, removed or added. */
export function mutateObject(r: Rng, seed: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...seed };
  const keys = Object.keys(out);
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const action = r.int(3);
    if (action === 0 && keys.length > 0) out[r.pick(keys)] = randomValue(r);
    else if (action === 1 && keys.length > 0) delete out[r.pick(keys)];
    else setKey(out, r.chance(0.3) ? '__proto__' : randomString(r).slice(0, 20), randomValue(r));
  }
  return out;
}

/** Byte-level damage to a text: flips, truncation, insertion, duplication. */
export function mutateText(r: Rng, text: string): string {
  const n = 1 + r.int(3);
  let s = text;
  for (let i = 0; i < n; i++) {
    const at = r.int(s.length + 1);
    switch (r.int(5)) {
      case 0: s = s.slice(0, at); break;
      case 1: s = s.slice(0, at) + String.fromCharCode(r.int(256)) + s.slice(at + 1); break;
      case 2: s = s.slice(0, at) + r.pick(['{', '[', '"', ',', ':', '\\', '}', ']', '0', '-', 'e', '\u0000']) + s.slice(at); break;
      case 3: s = s.slice(0, at) + s.slice(at, at + r.int(16)).repeat(2) + s.slice(at); break;
      default: s = s.slice(0, at) + s.slice(at + 1 + r.int(4)); break;
    }
  }
  return s;
}

/** Encodes a value; values JSON cannot encode (too deep) become nested text instead. */
export function toJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return '['.repeat(5000) + ']'.repeat(5000);
  }
}

/** SDK-shaped socket events (Vue SDK: auth2, chat message, typing; Flutter: conf). */
const EVENT_SEEDS: [string, unknown[]][] = [
  ['chat message', [{ room: 'g', message: 'hello', messageType: 'text' }]],
  ['chat message', [{ room: 'g', message: 'reply', messageType: 'text', reply: 'x' }]],
  ['typing', ['g', 'typing']],
  ['conf', [{ encoding: 'base64' }]],
  ['auth2', ['token', { 'IM-CLIENT-KEY': 'key' }]],
  ['auth', ['token']],
  ['pong', []],
];

/** One Engine.IO frame: valid-shaped with mutated content most of the time, raw damage otherwise. */
export function randomFrame(r: Rng): string {
  const roll = r.int(20);
  if (roll === 0) return mutateText(r, r.pick(['2', '3', '6', '1', '40', '41', '0', '5', '4']));
  if (roll === 1) return randomString(r);
  if (roll === 2) return `40${toJson(r.chance(0.5) ? randomValue(r) : mutateObject(r, { token: 'x', clientKey: 'y' }))}`;
  if (roll === 3) return mutateText(r, `42${toJson(['chat message', { room: 'g', message: 'x' }])}`);
  if (roll === 4) return `43${r.int(10)}${toJson([randomValue(r)])}`;
  const [event, args] = r.pick(EVENT_SEEDS);
  const mutated = args.map((a) => (typeof a === 'object' && a !== null && !Array.isArray(a) && r.chance(0.7) ? mutateObject(r, a as Record<string, unknown>) : r.chance(0.2) ? randomValue(r) : a));
  const ack = r.chance(0.5) ? String(r.chance(0.05) ? r.pick(['99999999999', '-1', '1.5']) : r.int(1000)) : '';
  const name = r.chance(0.1) ? randomString(r).slice(0, 30) : event;
  return `42${ack}${toJson([name, ...mutated])}`;
}

/**
 * Frames drawn from a pool built once (building one costs tens of µs; a sweep of 10^5 frames
 * must take seconds), each damaged again at random on the way out.
 */
export class FramePool {
  private frames: string[];
  constructor(private r: Rng, size = 4000) {
    this.frames = Array.from({ length: size }, () => randomFrame(r));
  }
  next(): string {
    const frame = this.r.pick(this.frames);
    return this.r.chance(0.2) ? mutateText(this.r, frame) : frame;
  }
}
