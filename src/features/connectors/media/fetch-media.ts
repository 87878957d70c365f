import { createHash } from 'node:crypto';
import { HttpStatusError, ResponseTooLargeError, safeGet, safePostDownload, UnsafeUrlError, type SafeGetOptions } from '../../../platform/safe-http.ts';
import type { NeutralMedia } from '../neutral.ts';

/** Where the platform APIs are and how downloads are bounded (config.platformApis + config.media). */
export interface MediaFetchConfig {
  apis: { whatsapp: string; telegram: string; meta: string };
  allowPrivate: boolean;
  /** MEDIA_MAX_BYTES: the ceiling over every platform's own limit (see mediaMaxBytes). */
  maxBytes: number;
  /** One deadline per request (the attempt as a whole is bounded by the caller's signal). */
  timeoutMs: number;
  /** Tests only: fake DNS (see safeGet). */
  resolve?: SafeGetOptions['resolve'];
}

/**
 * A download that failed. `permanent`: trying again cannot help (too large, refused address, a
 * source we cannot fetch). The message never carries a URL path or a token.
 */
export class MediaFetchError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MediaFetchError';
  }
}

export interface FetchedMedia {
  bytes: Buffer;
  /** What the platform claimed (kept for reference only: the stored type is sniffed). */
  claimedType: string | null;
}

const MB = 1024 * 1024;

/**
 * The largest file each platform documents (CONNECTORS.md §1.6, §2.5, §3, §6.3), as the download
 * cap. Per platform, not per kind: WhatsApp Cloud allows 100 MB documents but 16 MB audio/video
 * and 5 MB images, and the claimed MIME type is not trusted enough to pick the smaller one.
 * Codechat Go's media endpoint stops at 50 MB, v1 and Evolution at WhatsApp's 100 MB; Parley's
 * `codechat` inboxes speak the v1 API, so 100 MB.
 */
const PLATFORM_MAX_BYTES: Readonly<Record<string, number>> = {
  whatsapp: 100 * MB,
  telegram: 20 * MB, // Bot API getFile
  instagram: 25 * MB,
  messenger: 25 * MB,
  codechat: 100 * MB,
  evolution: 100 * MB,
};

/** The download cap for a platform: its documented limit, never above `ceiling` (MEDIA_MAX_BYTES). */
export function mediaMaxBytes(platform: string, ceiling: number): number {
  return Math.min(PLATFORM_MAX_BYTES[platform] ?? ceiling, ceiling);
}

/**
 * The bytes of a platform message's media (CONNECTORS.md §1.6, §2.5, §3, §6.3), every request
 * through safeGet / safePostDownload, capped at mediaMaxBytes(platform, cfg.maxBytes):
 * - WhatsApp media id: GET {base}/{id} with the bearer → {url, sha256, file_size} → GET url with
 *   the same bearer (dropped if a redirect leaves the URL's origin); sha256 checked when given.
 * - Telegram file_id: GET {base}/bot<token>/getFile → file_path → GET {base}/file/bot<token>/<path>.
 * - URLs (Instagram/Messenger CDN, Evolution mediaUrl): fetched as they are, no credentials;
 *   Codechat's relative `media.path` is joined to the inbox's `base_url`.
 * - Inline base64 (Evolution): decoded, size-capped.
 * - Codechat / Evolution message id: the gateway's media endpoint (see gatewayMedia).
 */
export async function fetchMedia(platform: string, media: NeutralMedia, creds: Record<string, string>, config: MediaFetchConfig, signal?: AbortSignal): Promise<FetchedMedia> {
  const { kind, value } = media.source;
  if (!value) throw new MediaFetchError('the message names no media', true);
  const cfg = { ...config, maxBytes: mediaMaxBytes(platform, config.maxBytes) };
  if (kind === 'inline_base64') return decodeInline(value, cfg.maxBytes);
  if (kind === 'url') return get(resolveUrl(platform, value, creds), cfg, {}, signal);
  if (platform === 'whatsapp') return whatsapp(value, creds, cfg, signal);
  if (platform === 'telegram') return telegram(value, creds, cfg, signal);
  if (platform === 'codechat' || platform === 'evolution') return gatewayMedia(platform, value, creds, cfg, signal);
  throw new MediaFetchError(`fetching ${platform} media by id is not supported yet`, true);
}

function decodeInline(value: string, maxBytes: number): FetchedMedia {
  const b64 = value.replace(/^data:[^,]*,/, '').replace(/\s+/g, '');
  // Checked before decoding: a huge string is not turned into a huge buffer.
  if (Math.floor((b64.length * 3) / 4) - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0) > maxBytes) throw tooLarge(maxBytes);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw new MediaFetchError('the inline media is not base64', true);
  return { bytes: Buffer.from(b64, 'base64'), claimedType: null };
}

function resolveUrl(platform: string, value: string, creds: Record<string, string>): string {
  if (/^https?:\/\//i.test(value)) {
    // Baileys gateways may hand over the WhatsApp CDN URL: its bytes are end-to-end encrypted.
    const host = safeHost(value);
    if (host?.endsWith('.whatsapp.net')) throw new MediaFetchError('the URL is an encrypted WhatsApp CDN file; it needs the gateway media endpoint', true);
    return value;
  }
  if ((platform === 'codechat' || platform === 'evolution') && value.startsWith('/')) {
    const base = creds.base_url;
    if (!base) throw new MediaFetchError('the inbox has no base_url credential to fetch the gateway media path from', true);
    try {
      const u = new URL(base);
      // Keep a base path (https://host/prefix) in front of the media path.
      return new URL(`${u.pathname.replace(/\/$/, '')}${value}`, u.origin).toString();
    } catch {
      throw new MediaFetchError('the inbox base_url is not a valid URL', true);
    }
  }
  throw new MediaFetchError('the media URL is not an http(s) URL', true);
}

function safeHost(url: string): string | null {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return null;
  }
}

async function whatsapp(mediaId: string, creds: Record<string, string>, cfg: MediaFetchConfig, signal?: AbortSignal): Promise<FetchedMedia> {
  const token = creds.access_token;
  if (!token) throw new MediaFetchError('the inbox has no access_token credential', true);
  const auth = { authorization: `Bearer ${token}` };
  const info = await getJson(`${cfg.apis.whatsapp}/${encodeURIComponent(mediaId)}`, cfg, auth, signal);
  const url = typeof info.url === 'string' ? info.url : null;
  if (!url) throw new MediaFetchError('the media endpoint gave no url', false);
  const announced = Number(info.file_size);
  if (Number.isFinite(announced) && announced > cfg.maxBytes) throw tooLarge(cfg.maxBytes);
  const got = await get(url, cfg, auth, signal);
  if (typeof info.sha256 === 'string' && info.sha256 && !sameSha256(got.bytes, info.sha256)) {
    throw new MediaFetchError('the downloaded bytes do not match the platform sha256', false);
  }
  return { bytes: got.bytes, claimedType: typeof info.mime_type === 'string' ? info.mime_type : got.claimedType };
}

async function telegram(fileId: string, creds: Record<string, string>, cfg: MediaFetchConfig, signal?: AbortSignal): Promise<FetchedMedia> {
  const token = creds.bot_token;
  if (!token) throw new MediaFetchError('the inbox has no bot_token credential', true);
  const info = await getJson(`${cfg.apis.telegram}/bot${token}/getFile?file_id=${encodeURIComponent(fileId)}`, cfg, {}, signal);
  const result = (info.result ?? {}) as Record<string, unknown>;
  const path = typeof result.file_path === 'string' ? result.file_path : null;
  if (info.ok !== true || !path) throw new MediaFetchError('getFile gave no file_path', false);
  const announced = Number(result.file_size);
  if (Number.isFinite(announced) && announced > cfg.maxBytes) throw tooLarge(cfg.maxBytes);
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return get(`${cfg.apis.telegram}/file/bot${token}/${encoded}`, cfg, {}, signal);
}

/**
 * A Baileys gateway decrypts the media of a message it stored, named by its WhatsApp id (§6.3),
 * with the `apikey` header:
 * - Evolution v2: POST {base_url}/chat/getBase64FromMediaMessage/{instance}
 *   `{message:{key:{id}}, convertToMp4:false}` → JSON `{mimetype, size{fileLength}, base64, …}`.
 * - Codechat v1: POST {base_url}/chat/mediaData/{instance}?binary=true → the raw bytes. The body is
 *   a Prisma `where` on Codechat's message table, whose `id` is its own integer row id: the
 *   WhatsApp id goes as `{keyId}`.
 * A 404 (no such instance or route) is permanent; anything else may pass (a gateway answers 400
 * for a failed download from WhatsApp's CDN, too).
 */
async function gatewayMedia(platform: 'codechat' | 'evolution', messageId: string, creds: Record<string, string>, cfg: MediaFetchConfig, signal?: AbortSignal): Promise<FetchedMedia> {
  const { base_url: base, instance, api_key: key } = creds;
  if (!base || !instance || !key) throw new MediaFetchError('the inbox has no base_url / instance / api_key credentials', true);
  const headers = { apikey: key, 'content-type': 'application/json' };
  const root = `${base.replace(/\/$/, '')}/chat`;
  const inst = encodeURIComponent(instance);
  if (platform === 'codechat') return post(`${root}/mediaData/${inst}?binary=true`, { keyId: messageId }, cfg, headers, signal);
  // The JSON carries the bytes as base64 (4/3 of them) beside a caption and a file name.
  const body = { message: { key: { id: messageId } }, convertToMp4: false };
  const got = await post(`${root}/getBase64FromMediaMessage/${inst}`, body, cfg, headers, signal, Math.ceil(cfg.maxBytes / 3) * 4 + 64 * 1024);
  const info = parseJsonObject(got.bytes);
  const announced = Number((info.size as { fileLength?: unknown } | undefined)?.fileLength);
  if (Number.isFinite(announced) && announced > cfg.maxBytes) throw tooLarge(cfg.maxBytes);
  if (typeof info.base64 !== 'string' || !info.base64) throw new MediaFetchError('the gateway answered no base64', false);
  return { bytes: decodeInline(info.base64, cfg.maxBytes).bytes, claimedType: typeof info.mimetype === 'string' ? info.mimetype : null };
}

/** Meta documents hex; webhooks carry base64: either form is accepted. */
function sameSha256(bytes: Buffer, expected: string): boolean {
  const digest = createHash('sha256').update(bytes).digest();
  return expected.toLowerCase() === digest.toString('hex') || expected.replace(/=+$/, '') === digest.toString('base64').replace(/=+$/, '');
}

async function getJson(url: string, cfg: MediaFetchConfig, headers: Record<string, string>, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const got = await get(url, { ...cfg, maxBytes: 64 * 1024 }, headers, signal);
  return parseJsonObject(got.bytes);
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  try {
    const json = JSON.parse(bytes.toString('utf8')) as unknown;
    if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new MediaFetchError('the platform API did not answer JSON', false);
}

async function get(url: string, cfg: MediaFetchConfig, headers: Record<string, string>, signal?: AbortSignal): Promise<FetchedMedia> {
  try {
    const r = await safeGet(url, { headers, timeoutMs: cfg.timeoutMs, allowPrivate: cfg.allowPrivate, maxBytes: cfg.maxBytes, signal, resolve: cfg.resolve });
    return { bytes: r.body, claimedType: r.contentType };
  } catch (err) {
    throw classify(err, cfg.maxBytes);
  }
}

/** A gateway POST (JSON body, no redirect), its answer read up to `readCap` bytes; a 404 is final. */
async function post(url: string, body: unknown, cfg: MediaFetchConfig, headers: Record<string, string>, signal?: AbortSignal, readCap = cfg.maxBytes): Promise<FetchedMedia> {
  try {
    const r = await safePostDownload(url, JSON.stringify(body), { headers, timeoutMs: cfg.timeoutMs, allowPrivate: cfg.allowPrivate, maxBytes: readCap, signal, resolve: cfg.resolve });
    return { bytes: r.body, claimedType: r.contentType };
  } catch (err) {
    const e = classify(err, cfg.maxBytes);
    throw err instanceof HttpStatusError && err.status === 404 ? new MediaFetchError(e.message, true) : e;
  }
}

/** Errors from safeGet as MediaFetchError; messages that could hold a URL (with a token) are not passed on. */
function classify(err: unknown, maxBytes: number): MediaFetchError {
  if (err instanceof MediaFetchError) return err;
  if (err instanceof ResponseTooLargeError) return tooLarge(maxBytes);
  if (err instanceof UnsafeUrlError) return new MediaFetchError(`refused: ${err.message}`, true);
  if (err instanceof HttpStatusError) {
    // Retried: an expired or not-yet-ready URL, a rate limit or an outage may pass.
    return new MediaFetchError(`the platform answered HTTP ${err.status}`, false);
  }
  const code = (err as { code?: unknown }).code;
  const text = err instanceof Error ? err.message : String(err);
  return new MediaFetchError(typeof code === 'string' ? `network error ${code}` : /^no answer within|^aborted$|cut off|redirects/.test(text) ? text : 'network error', false);
}

function tooLarge(maxBytes: number): MediaFetchError {
  return new MediaFetchError(`the media is larger than ${maxBytes} bytes`, true);
}
