/**
 * Content types from magic numbers, for uploads whose part carries no useful type (the Flutter
 * SDK's dio sends every file as `application/octet-stream`). A compact table of the formats a
 * chat app shares; anything else stays generic and meets the allow-list as such.
 */

/** Types that say nothing about the content. */
const GENERIC = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'application/unknown', 'application/x-unknown']);

export function isGenericType(mimetype: string): boolean {
  return GENERIC.has(mimetype.trim().toLowerCase());
}

/** Bytes a sniff needs to see (the longest signature below ends before this). */
export const SNIFF_BYTES = 64;

interface Signature {
  type: string;
  offset?: number;
  bytes: number[] | string;
}

const SIGNATURES: Signature[] = [
  { type: 'image/jpeg', bytes: [0xff, 0xd8, 0xff] },
  { type: 'image/png', bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'image/gif', bytes: 'GIF87a' },
  { type: 'image/gif', bytes: 'GIF89a' },
  { type: 'image/bmp', bytes: 'BM' },
  { type: 'image/tiff', bytes: [0x49, 0x49, 0x2a, 0x00] },
  { type: 'image/tiff', bytes: [0x4d, 0x4d, 0x00, 0x2a] },
  { type: 'image/x-icon', bytes: [0x00, 0x00, 0x01, 0x00] },
  { type: 'application/pdf', bytes: '%PDF-' },
  { type: 'application/rtf', bytes: '{\\rtf' },
  { type: 'audio/ogg', bytes: 'OggS' },
  { type: 'audio/flac', bytes: 'fLaC' },
  { type: 'audio/amr', bytes: '#!AMR' },
  { type: 'audio/mpeg', bytes: 'ID3' },
  { type: 'video/webm', bytes: [0x1a, 0x45, 0xdf, 0xa3] },
  { type: 'application/gzip', bytes: [0x1f, 0x8b] },
  { type: 'application/x-7z-compressed', bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
  { type: 'application/vnd.rar', bytes: 'Rar!' },
  { type: 'application/x-msdownload', bytes: 'MZ' },
  { type: 'application/x-executable', bytes: [0x7f, 0x45, 0x4c, 0x46] },
  // OLE2 compound file: the legacy Office formats (refined by extension below).
  { type: 'application/x-ole-storage', bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1] },
];

/** ISO-BMFF brands (bytes 8–11 after `ftyp` at 4): MP4/MOV video, M4A audio, HEIF images. */
const FTYP_BRANDS: Record<string, string> = {
  'M4A ': 'audio/mp4', 'M4B ': 'audio/mp4', 'M4P ': 'audio/mp4', 'F4A ': 'audio/mp4',
  'qt  ': 'video/quicktime',
  heic: 'image/heic', heix: 'image/heic', mif1: 'image/heif', msf1: 'image/heif', avif: 'image/avif',
  '3gp4': 'video/3gpp', '3gp5': 'video/3gpp', '3g2a': 'video/3gpp2',
};

/** Zip containers named by extension (Office Open XML); other zips stay application/zip. */
const ZIP_EXTENSIONS: Record<string, string> = {
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
};
const OLE_EXTENSIONS: Record<string, string> = {
  doc: 'application/msword', xls: 'application/vnd.ms-excel', ppt: 'application/vnd.ms-powerpoint',
};

function matches(head: Buffer, sig: Signature): boolean {
  const offset = sig.offset ?? 0;
  const bytes = typeof sig.bytes === 'string' ? Buffer.from(sig.bytes, 'latin1') : Buffer.from(sig.bytes);
  return head.length >= offset + bytes.length && head.subarray(offset, offset + bytes.length).equals(bytes);
}

const ascii = (head: Buffer, from: number, to: number) => head.subarray(from, to).toString('latin1');
const extension = (filename: string) => filename.toLowerCase().split('.').pop() ?? '';

/** The type the leading bytes show, or undefined when no signature matches. */
export function sniffType(head: Buffer, filename = ''): string | undefined {
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF') {
    const kind = ascii(head, 8, 12);
    if (kind === 'WEBP') return 'image/webp';
    if (kind === 'WAVE') return 'audio/wav';
    if (kind === 'AVI ') return 'video/x-msvideo';
  }
  if (head.length >= 12 && ascii(head, 4, 8) === 'ftyp') return FTYP_BRANDS[ascii(head, 8, 12)] ?? 'video/mp4';
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    return ZIP_EXTENSIONS[extension(filename)] ?? 'application/zip';
  }
  for (const sig of SIGNATURES) {
    if (!matches(head, sig)) continue;
    if (sig.type === 'application/x-ole-storage') return OLE_EXTENSIONS[extension(filename)] ?? sig.type;
    return sig.type;
  }
  // MPEG audio frame sync: ADTS (AAC), then MP3.
  if (head.length >= 2 && head[0] === 0xff && (head[1]! & 0xf6) === 0xf0) return 'audio/aac';
  if (head.length >= 2 && head[0] === 0xff && (head[1]! & 0xe0) === 0xe0) return 'audio/mpeg';
  if (looksLikeText(head)) return extension(filename) === 'csv' ? 'text/csv' : 'text/plain';
  return undefined;
}

/** Valid UTF-8 with no control characters other than tab/CR/LF (a cut last character is allowed). */
function looksLikeText(head: Buffer): boolean {
  if (head.length === 0) return false;
  for (const byte of head) if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  const text = head.toString('utf8');
  const replacements = text.split('\uFFFD').length - 1;
  return replacements === 0 || (replacements === 1 && text.endsWith('\uFFFD'));
}
