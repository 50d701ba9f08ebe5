import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const src = path.resolve(import.meta.dirname, '../../src');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : [];
  });

/** "Every error code spelled once in the catalogue": src/core/errors.ts is the only place that makes one. */
describe('the error catalogue', () => {
  it('is the only place an ImError is constructed', () => {
    const outside = files(src).filter((f) => !f.endsWith(path.join('core', 'errors.ts')) && /new ImError\(/.test(readFileSync(f, 'utf8')));
    expect(outside.map((f) => path.relative(src, f))).toEqual([]);
  });

  it('spells each code once', () => {
    const text = readFileSync(path.join(src, 'core', 'errors.ts'), 'utf8');
    const codes = [...text.matchAll(/new ImError\(\s*\d+,\s*'([A-Z_]+)'/g)].map((m) => m[1]);
    expect(codes.length).toBeGreaterThan(20);
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });
});
