import { describe, expect, it } from 'vitest';
import { isGenericType, sniffType } from '../../src/files/sniff.js';
import { makePng } from '../helpers/png.js';

const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('content sniffing', () => {
  it('recognises the formats chat apps share', () => {
    const cases: [Buffer, string, string][] = [
      [makePng(4, 4), 'x', 'image/png'],
      [bytes([0xff, 0xd8, 0xff, 0xe0], 'JFIF'), 'x', 'image/jpeg'],
      [bytes('GIF89a', [1, 0]), 'x', 'image/gif'],
      [bytes('RIFF', [0, 0, 0, 0], 'WEBPVP8 '), 'x', 'image/webp'],
      [bytes('RIFF', [0, 0, 0, 0], 'WAVEfmt '), 'x', 'audio/wav'],
      [bytes([0, 0, 0, 0x18], 'ftypisom', [0, 0, 0, 0]), 'x', 'video/mp4'],
      [bytes([0, 0, 0, 0x18], 'ftypqt  ', [0, 0, 0, 0]), 'x', 'video/quicktime'],
      [bytes([0, 0, 0, 0x18], 'ftypM4A ', [0, 0, 0, 0]), 'x', 'audio/mp4'],
      [bytes([0, 0, 0, 0x18], 'ftypheic', [0, 0, 0, 0]), 'x', 'image/heic'],
      [bytes([0x1a, 0x45, 0xdf, 0xa3, 0x9f]), 'x', 'video/webm'],
      [bytes('OggS', [0, 2]), 'x', 'audio/ogg'],
      [bytes('ID3', [4, 0]), 'x', 'audio/mpeg'],
      [bytes([0xff, 0xfb, 0x90, 0x64]), 'x', 'audio/mpeg'],
      [bytes([0xff, 0xf1, 0x50, 0x80]), 'x', 'audio/aac'],
      [bytes('#!AMR\n'), 'x', 'audio/amr'],
      [bytes('%PDF-1.4\n'), 'x', 'application/pdf'],
      [bytes('PK', [3, 4, 20, 0]), 'report.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
      [bytes('PK', [3, 4, 20, 0]), 'stuff.zip', 'application/zip'],
      [bytes([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), 'old.xls', 'application/vnd.ms-excel'],
      [bytes('MZ', [0x90, 0]), 'photo.jpg', 'application/x-msdownload'],
      [bytes('a,b\n1,2\n'), 'table.csv', 'text/csv'],
      [Buffer.from('héllo wörld', 'utf8'), 'n.txt', 'text/plain'],
    ];
    for (const [head, name, type] of cases) expect(sniffType(head, name), type).toBe(type);
  });

  it('leaves unknown binary unrecognised, and knows which declared types say nothing', () => {
    expect(sniffType(bytes([0, 1, 2, 3, 0xfe, 0xfd]))).toBeUndefined();
    expect(sniffType(Buffer.alloc(0))).toBeUndefined();
    expect(isGenericType('application/octet-stream')).toBe(true);
    expect(isGenericType('')).toBe(true);
    expect(isGenericType('image/png')).toBe(false);
  });
});
