import { createHmac, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import { placeholderPng } from '../files/placeholder.js';
import { probeVideo } from '../files/video-probe.js';
import { ContentTooLarge, type FileStorage } from '../files/storage.js';
import type { Store } from '../store/store.js';
import { Errors } from './errors.js';
import type { Actor } from './identity.js';
import type { AppRecord, FileRecord, MemberRoom } from './models.js';
import { type Clock, systemClock } from './clock.js';
import { requireRoomFor } from './lookup.js';
import { authorize, isMember } from './permissions.js';
import { DEFAULT_SERVICE_LIMITS, type ServiceLimits } from './limits.js';
import { WindowCounter } from './rate-limit.js';
import { newId } from './secrets.js';

export interface FileOptions {
  maxBytes: number;
  /** Allowed content types; `type/*` matches a whole family. */
  allowedTypes: readonly string[];
  signedUrlTtlMs: number;
}

export interface Upload {
  bucket: string;
  filename: string;
  mimetype: string;
  content: Readable;
  /** The multipart `extra` part, which may arrive after the file: resolved when the form ends. */
  extra: Promise<Record<string, unknown>>;
}

/** Bucket names and file ids become path segments: plain names only. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkName(kind: 'bucket' | 'file id', value: string): void {
  if (!NAME.test(value) || value.includes('..')) {
    throw Errors.invalidPath(kind, value);
  }
}

/** The room an upload names, as IMKIT SDKs spell it in `extra`. */
const roomOf = (extra: Record<string, unknown>): string | undefined => {
  const room = extra.roomID ?? extra.roomId ?? extra.room;
  return typeof room === 'string' && room !== '' ? room : undefined;
};

const iso = (ms: number) => new Date(ms).toISOString();

/** Uploads, downloads and signed links. Who may do what is in the permission table. */
export class FileService {
  constructor(
    private store: Store,
    private storage: FileStorage,
    private options: FileOptions,
    private clock: Clock = systemClock,
    limits: ServiceLimits = DEFAULT_SERVICE_LIMITS,
  ) {
    this.uploaded = new WindowCounter(limits.uploadBytesPerHourPerUser, 3_600_000);
  }

  /** Bytes uploaded per user in the current hour (per node). */
  private uploaded: WindowCounter;

  /** Checks that can be made before any byte is read: bucket name, content type, room access. */
  async precheck(actor: Actor, bucket: string, mimetype: string, extra?: Record<string, unknown>): Promise<void> {
    authorize(actor, 'files.upload');
    if (actor.kind === 'user' && !this.uploaded.hit(`${actor.app.id}/${actor.userId}`, 0)) throw Errors.quotaExceeded('upload bytes per hour');
    checkName('bucket', bucket);
    if (!this.typeAllowed(mimetype)) {
      throw Errors.unsupportedMediaType(mimetype);
    }
    if (extra) await this.roomFor(actor, extra);
  }

  /** Streams the content to storage, then records it; anything refused leaves no file behind. */
  async upload(actor: Actor, upload: Upload): Promise<FileRecord> {
    const id = newId();
    const key = this.key(actor.app.id, upload.bucket, id);
    let written;
    try {
      written = await this.storage.write(key, upload.content, this.options.maxBytes);
    } catch (err) {
      if (err instanceof ContentTooLarge) throw Errors.fileTooLarge(this.options.maxBytes);
      throw err;
    }
    if (actor.kind === 'user') this.uploaded.hit(`${actor.app.id}/${actor.userId}`, written.length);
    try {
      const extra = await upload.extra;
      const room = await this.roomFor(actor, extra);
      const record: FileRecord = {
        id,
        bucket: upload.bucket,
        filename: upload.filename,
        mimetype: upload.mimetype,
        length: written.length,
        md5: written.md5,
        client: actor.kind === 'user' ? actor.userId : undefined,
        room: room?.id,
        extra,
        uploadedAt: this.clock.now(),
      };
      await this.store.putFile(actor.app.id, record);
      return record;
    } catch (err) {
      await this.storage.delete(key);
      throw err;
    }
  }

  /** The file's record, if the actor may read it. */
  async metadata(actor: Actor, bucket: string, id: string): Promise<FileRecord> {
    const file = await this.load(actor.app.id, bucket, id);
    authorize(actor, 'files.read', await this.readableThrough(actor, file), { sender: file.client });
    return file;
  }

  /**
   * The room that gives the actor access to the file: the one it was uploaded to, or one in
   * which a message referencing it was sent, whichever the actor is a member of. Otherwise the
   * first of them (so the refusal names membership), or none (only the uploader may read it).
   */
  private async readableThrough(actor: Actor, file: FileRecord): Promise<MemberRoom | undefined> {
    const roomIds = [...new Set([...(file.room ? [file.room] : []), ...(file.sharedIn ?? [])])];
    if (roomIds.length === 0 || actor.kind === 'admin' || actor.userId === file.client) return undefined;
    // A file sent to many rooms (a broadcast) is checked against the reader's own rooms, not room by room.
    const mine = roomIds.length > 1 ? new Set(await this.store.userRoomIds(actor.app.id, actor.userId)) : undefined;
    for (const roomId of mine ? roomIds.filter((r) => mine.has(r)) : roomIds) {
      const room = await this.store.getRoomForUser(actor.app.id, roomId, actor.userId);
      if (room && isMember(actor, room)) return room;
    }
    return this.store.getRoomForUser(actor.app.id, roomIds[0]!, actor.userId);
  }

  /**
   * A message was sent to `room` with these fields: every uploaded file its URLs name, and
   * that the sender may read, becomes readable by the room's members. A URL naming a file the
   * sender cannot read grants nothing.
   */
  async shareReferenced(actor: Actor, roomId: string, fields: Record<string, unknown>): Promise<void> {
    for (const ref of fileReferences(fields)) {
      const file = await this.store.getFile(actor.app.id, ref.id);
      if (!file || file.bucket !== ref.bucket || file.room === roomId || file.sharedIn?.includes(roomId)) continue;
      try {
        authorize(actor, 'files.read', await this.readableThrough(actor, file), { sender: file.client });
      } catch {
        continue;
      }
      await this.store.shareFile(actor.app.id, file.id, roomId);
    }
  }

  /**
   * `POST /files/video-info` after the upload: the video's size and duration read from its
   * container (MP4/MOV family; null for others), and a thumbnail — a placeholder of the video's
   * aspect ratio stored beside it, since taking a frame needs a video decoder roomcast does
   * not ship. URLs are `/files/<bucket>/<id>` paths, which the Vue SDK signs before use.
   */
  async videoInfo(actor: Actor, video: FileRecord) {
    if (!video.mimetype.toLowerCase().startsWith('video/')) {
      await this.store.deleteFile(actor.app.id, video.id);
      await this.storage.delete(this.key(actor.app.id, video.bucket, video.id));
      throw Errors.unsupportedMediaType(video.mimetype);
    }
    const info = await probeVideo(await this.open(actor.app, video));
    const thumbnail = await this.upload(actor, {
      bucket: video.bucket,
      filename: `${video.filename}.thumbnail.png`,
      mimetype: 'image/png',
      content: Readable.from([placeholderPng(info?.width ?? 16, info?.height ?? 9)]),
      extra: Promise.resolve(video.extra ?? {}),
    });
    return {
      originalId: video.id,
      originalUrl: `/files/${video.bucket}/${video.id}`,
      thumbnailId: thumbnail.id,
      thumbnailUrl: `/files/${thumbnail.bucket}/${thumbnail.id}`,
      thumbnailIsPlaceholder: true,
      mimetype: video.mimetype,
      bytes: video.length,
      width: info?.width ?? null,
      height: info?.height ?? null,
      duration: info?.duration ?? null,
    };
  }

  async open(app: AppRecord, file: FileRecord): Promise<Readable> {
    const content = await this.storage.read(this.key(app.id, file.bucket, file.id));
    if (!content) throw Errors.fileNotFound(`the content of file '${file.id}' is missing`);
    return content;
  }

  async remove(actor: Actor, bucket: string, id: string): Promise<void> {
    const file = await this.load(actor.app.id, bucket, id);
    authorize(actor, 'files.delete', undefined, { sender: file.client });
    await this.store.deleteFile(actor.app.id, id);
    await this.storage.delete(this.key(actor.app.id, bucket, id));
  }

  /** A short-lived link that works without headers (an `<img src>`): HMAC with the app's secret. */
  signedPath(app: AppRecord, file: FileRecord): string {
    const expires = this.clock.now() + this.options.signedUrlTtlMs;
    const sig = this.signature(app, file.bucket, file.id, expires);
    return `/files/${file.bucket}/${file.id}?app=${encodeURIComponent(app.id)}&expires=${expires}&sig=${sig}`;
  }

  /** The file a signed link names; 403 for a wrong or expired signature. */
  async verifySigned(bucket: string, id: string, query: URLSearchParams): Promise<{ app: AppRecord; file: FileRecord }> {
    const appId = query.get('app') ?? '';
    const expires = Number(query.get('expires'));
    const sig = query.get('sig') ?? '';
    const app = appId ? await this.store.getApp(appId) : undefined;
    const expected = app && Number.isFinite(expires) ? this.signature(app, bucket, id, expires) : '';
    const valid = expected.length > 0 && expected.length === sig.length && timingSafeEqual(Buffer.from(expected), Buffer.from(sig));
    if (!app || !valid) throw Errors.invalidSignature();
    // No link lives longer than the configured lifetime, whoever signed it (a leaked secret
    // cannot mint year-long links).
    if (expires > this.clock.now() + this.options.signedUrlTtlMs + 5_000) throw Errors.invalidSignature();
    if (expires <= this.clock.now()) throw Errors.linkExpired();
    return { app, file: await this.load(app.id, bucket, id) };
  }

  private signature(app: AppRecord, bucket: string, id: string, expires: number): string {
    return createHmac('sha256', app.fileSecret ?? `files:${app.signingSecret}`).update(`${app.id}/${bucket}/${id}/${expires}`).digest('base64url');
  }

  private async roomFor(actor: Actor, extra: Record<string, unknown>): Promise<MemberRoom | undefined> {
    const roomId = roomOf(extra);
    if (!roomId) return undefined;
    const room = await requireRoomFor(this.store, actor, roomId);
    authorize(actor, 'files.uploadToRoom', room);
    return room;
  }

  private async load(appId: string, bucket: string, id: string): Promise<FileRecord> {
    checkName('bucket', bucket);
    checkName('file id', id);
    const file = await this.store.getFile(appId, id);
    if (!file || file.bucket !== bucket) throw Errors.fileNotFound(`file '${id}' not found`);
    return file;
  }

  private key(appId: string, bucket: string, id: string): string {
    return `${appId}/${bucket}/${id}`;
  }

  private typeAllowed(mimetype: string): boolean {
    const type = mimetype.toLowerCase();
    return this.options.allowedTypes.some((allowed) =>
      allowed.endsWith('*') ? type.startsWith(allowed.slice(0, -1).toLowerCase()) : type === allowed.toLowerCase(),
    );
  }
}

/** IMKIT's File object. */
export function fileView(file: FileRecord) {
  return {
    _id: file.id,
    id: file.id,
    length: file.length,
    md5: file.md5,
    filename: file.filename,
    mimetype: file.mimetype,
    client: file.client ?? null,
    bucketName: file.bucket,
    extra: file.extra,
    uploadDate: iso(file.uploadedAt),
    uploadDateMS: file.uploadedAt,
  };
}

/** `/files/<bucket>/<id>` in a URL, absolute or relative, before any query. */
const FILE_URL = /\/files\/([A-Za-z0-9][A-Za-z0-9._-]{0,127})\/([A-Za-z0-9][A-Za-z0-9._-]{0,127})(?=$|[/?#])/;
/** Most references one message may carry (an album is a few dozen at most). */
const MAX_REFERENCES = 64;

/** The uploaded files a message's URL fields name (originalUrl, thumbnailUrl, url, images[], file.url, video.url). */
export function fileReferences(fields: Record<string, unknown>): { bucket: string; id: string }[] {
  const urls: unknown[] = [fields.originalUrl, fields.thumbnailUrl, fields.url];
  if (Array.isArray(fields.images)) {
    for (const image of fields.images) {
      if (image && typeof image === 'object') urls.push((image as Record<string, unknown>).originalUrl, (image as Record<string, unknown>).thumbnailUrl);
    }
  }
  for (const key of ['file', 'video']) {
    const nested = fields[key];
    if (nested && typeof nested === 'object' && !Array.isArray(nested)) urls.push((nested as Record<string, unknown>).url);
  }
  const seen = new Map<string, { bucket: string; id: string }>();
  for (const url of urls) {
    if (typeof url !== 'string') continue;
    const match = FILE_URL.exec(url);
    if (match && !seen.has(match[2]!)) seen.set(match[2]!, { bucket: match[1]!, id: match[2]! });
    if (seen.size >= MAX_REFERENCES) break;
  }
  return [...seen.values()];
}
