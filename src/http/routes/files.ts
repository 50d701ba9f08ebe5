import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import busboy from 'busboy';
import { isGenericType, SNIFF_BYTES, sniffType } from '../../files/sniff.js';
import type { Core } from '../../core/core.js';
import { Errors } from '../../core/errors.js';
import { fileView } from '../../core/files.js';
import type { Actor } from '../../core/identity.js';
import type { AppRecord, FileRecord } from '../../core/models.js';
import { requestHost } from '../../credentials.js';
import { ok } from '../envelope.js';
import type { RouteDef } from '../route.js';
import { checkJsonLimits, type InputLimits } from '../../core/limits.js';
import type { HttpRequest, HttpResponse } from '../types.js';

/** Uploads (multipart `file` + `extra`), downloads (headers or a signed link), metadata, delete. */
export const fileRoutes: RouteDef[] = [
  {
    method: 'POST', path: '/files/:bucket', summary: 'Upload a file (multipart/form-data, part `file`); returns a signed link', body: null, auth: 'actor', streamBody: true,
    handle: async ({ core, actor, params, req }) => fileView(await receiveUpload(core, actor, params.bucket!, req)),
  },
  {
    // The Vue SDK's fallback for a video its browser cannot open (FetchVideoInfo): parts `file` and `autoUpload` ({bucket, extra}).
    method: 'POST', path: '/files/video-info', summary: "Upload a video and read its size and duration (MP4/MOV); the thumbnail is a placeholder (no decoder)", body: null, auth: 'actor', streamBody: true,
    handle: async ({ core, actor, req }) => core.files.videoInfo(actor, await receiveUpload(core, actor, VIDEO_INFO_BUCKET, req, 'autoUpload')),
  },
  {
    method: 'GET', path: '/files/:bucket/:id', summary: 'Download a file (signed link, or client key + token)', query: { exp: 'signed link expiry (epoch s)', sig: 'signed link signature' }, auth: 'public', raw: true,
    handle: async ({ core, params, req, authenticate, config }) => {
      if (req.query.has('sig')) {
        const { app, file } = await core.files.verifySigned(params.bucket!, params.id!, req.query);
        return download(core, app, file);
      }
      const actor = await authenticate();
      const file = await core.files.metadata(actor, params.bucket!, params.id!);
      const signedOnly = req.query.get('signedUrlOnly');
      if (signedOnly === '1' || signedOnly === 'true') {
        return ok({ url: `${origin(req, config.trustProxy)}${core.files.signedPath(actor.app, file)}` });
      }
      return download(core, actor.app, file);
    },
  },
  {
    method: 'GET', path: '/files/:bucket/:id/metadata', summary: "A file's metadata", auth: 'actor',
    handle: async ({ core, actor, params }) => fileView(await core.files.metadata(actor, params.bucket!, params.id!)),
  },
  {
    method: 'DELETE', path: '/files/:bucket/:id', summary: 'Delete a file (uploader or room owner)', auth: 'actor',
    handle: async ({ core, actor, params }) => {
      await core.files.remove(actor, params.bucket!, params.id!);
      return { n: 1, ok: 1 };
    },
  },
];

/** Types a browser shows without running anything: raster images, audio, video, PDF, plain text. */
const PASSIVE = /^(image\/(png|jpeg|gif|webp|avif|bmp)|audio\/[\w.+-]+|video\/[\w.+-]+|application\/pdf|text\/plain)$/i;
const isPassive = (mimetype: string): boolean => PASSIVE.test(mimetype.split(';')[0]!.trim());

async function download(core: Core, app: AppRecord, file: FileRecord): Promise<HttpResponse> {
  const stream = await core.files.open(app, file);
  return {
    status: 200,
    headers: {
      'content-type': file.mimetype,
      // Only passive media render inline; anything that could run script (SVG, HTML, XML, …)
      // is a download, and no file may load or run anything from the API's origin either way.
      'content-disposition': `${isPassive(file.mimetype) ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox",
      'x-content-type-options': 'nosniff',
      'cache-control': 'private, max-age=300',
      etag: `"${file.md5}"`,
    },
    body: { stream, length: file.length },
  };
}

/** Scheme and host the client used, for absolute signed links. */
function origin(req: HttpRequest, trustProxy: boolean): string {
  const proto = trustProxy ? req.headers['x-forwarded-proto']?.split(',')[0]?.trim() : undefined;
  const host = trustProxy ? (req.headers['x-forwarded-host'] ?? req.headers.host) : req.headers.host;
  return `${proto === 'https' ? 'https' : 'http'}://${host ?? requestHost(req.headers, trustProxy) ?? 'localhost'}`;
}

function parseExtra(value: string, limits: InputLimits): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw Errors.invalidInput('extra: must be a JSON object string');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw Errors.invalidInput('extra: must be a JSON object string');
  }
  checkJsonLimits(parsed, limits);
  return parsed as Record<string, unknown>;
}

/** Where `/files/video-info` keeps a video whose `autoUpload.bucket` arrives after the file (the Vue SDK's order): the bucket the SDK names. */
const VIDEO_INFO_BUCKET = 'chat';

/** `autoUpload` ({bucket, extra}, `/files/video-info`): the `extra` inside, and the bucket if it is a plain string. */
function parseAutoUpload(value: string, limits: InputLimits): { extra: Record<string, unknown>; bucket?: string } {
  const auto = parseExtra(value, limits);
  const extra = auto.extra === undefined ? {} : auto.extra;
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) throw Errors.invalidInput('autoUpload.extra: must be an object');
  return { extra: { ...extra }, bucket: typeof auto.bucket === 'string' ? auto.bucket : undefined };
}

/**
 * Reads a multipart upload: the `file` part is streamed straight to storage (never held in
 * memory); `extra` may come before or after it. With `extraField: 'autoUpload'` the extra is
 * that part's `extra`, and its `bucket` replaces `bucket` when it arrives before the file (the
 * file is being written by the time a later one arrives). On any refusal the rest of the body
 * is drained and no file remains.
 */
function receiveUpload(core: Core, actor: Actor, defaultBucket: string, req: HttpRequest, extraField: 'extra' | 'autoUpload' = 'extra'): Promise<FileRecord> {
  let bucket = defaultBucket;
  const body = req.stream as Readable;
  return new Promise<FileRecord>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': req.headers['content-type'] ?? '' }, limits: { files: 1, fields: 20, fieldSize: 64 * 1024, parts: 30 } });
    } catch {
      reject(Errors.multipartRequired());
      return;
    }
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      body.unpipe(parser);
      body.resume();
      reject(err);
    };
    let extra: Record<string, unknown> | undefined;
    let extraError: unknown;
    let formEnded!: () => void;
    const ended = new Promise<void>((r) => (formEnded = r));
    let upload: Promise<FileRecord> | undefined;

    parser.on('field', (name, value) => {
      if (name !== extraField) return;
      try {
        if (extraField === 'extra') {
          extra = parseExtra(value, core.limits);
        } else {
          const auto = parseAutoUpload(value, core.limits);
          extra = auto.extra;
          if (auto.bucket && !upload) bucket = auto.bucket;
        }
      } catch (err) {
        extraError = err;
      }
    });
    parser.on('file', (name, file, info) => {
      // A truncated form errors this stream too; the parser's own 'error' reports it.
      file.on('error', () => undefined);
      if (name !== 'file' || upload || settled) {
        file.resume();
        return;
      }
      upload = (async () => {
        if (extraError) throw extraError;
        const filename = info.filename || 'file';
        // A part typed application/octet-stream (the Flutter SDK's dio does so) is typed from its bytes.
        let content: Readable = file;
        let mimetype = info.mimeType;
        if (isGenericType(mimetype)) {
          const peeked = await peek(file, SNIFF_BYTES);
          content = peeked.content;
          mimetype = sniffType(peeked.head, filename) ?? 'application/octet-stream';
        }
        await core.files.precheck(actor, bucket, mimetype, extra);
        return core.files.upload(actor, {
          bucket,
          filename,
          mimetype,
          content,
          extra: ended.then(() => {
            if (extraError) throw extraError;
            return extra ?? {};
          }),
        });
      })();
      upload.then(
        (record) => {
          if (settled) return;
          settled = true;
          resolve(record);
        },
        (err) => {
          file.resume();
          fail(err);
        },
      );
    });
    parser.on('close', () => {
      formEnded();
      if (!upload) fail(Errors.fileRequired());
    });
    parser.on('error', () => fail(Errors.malformedMultipart()));
    body.on('error', (err) => fail(err));
    body.pipe(parser);
  });
}

/**
 * Reads up to `bytes` leading bytes of a stream without losing them: the head, and a stream
 * that yields the head and then the rest (with the source's backpressure and errors).
 */
function peek(source: Readable, bytes: number): Promise<{ head: Buffer; content: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = () => {
      source.off('data', onData);
      source.off('end', done);
      source.off('error', onError);
      source.pause();
      const head = Buffer.concat(chunks);
      async function* replay() {
        if (head.length > 0) yield head;
        for await (const chunk of source) yield chunk as Buffer;
      }
      resolve({ head: head.subarray(0, bytes), content: ReadableStream.from(replay(), { objectMode: false }) });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= bytes) done();
    };
    const onError = (err: unknown) => reject(err);
    source.on('data', onData);
    source.once('end', done);
    source.once('error', onError);
  });
}
