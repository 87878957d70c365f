import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Outgoing HTTP to addresses chosen by users (webhook URLs): SECURITY.md class E. The host name is
 * resolved first and EVERY address it resolves to must be public (a name that also resolves to
 * 10.0.0.5 is refused, whatever the first answer is), then the connection is pinned to the checked
 * address, so a DNS answer that changes between the check and the connect (rebinding) cannot steer
 * the request inside. Redirects are never followed; the whole exchange has a deadline and the
 * response body read is capped.
 */

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network, 0.0.0.0
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::', 96], // IPv4-compatible (deprecated)
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ...)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds an IPv4 address; deprecated)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (any textual form, including a dotted IPv4 tail). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * Is this IP address one a user-supplied URL must not reach? Loopback, private, link-local
 * (cloud metadata), CGNAT, multicast, reserved and documentation ranges, in IPv4 and IPv6,
 * including IPv4 addresses carried inside IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`).
 * Anything that is not an IP address counts as not public.
 */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family !== 6) return true;
  const g = ipv6Groups(address);
  if (g.length !== 8 || g.some((x) => !Number.isInteger(x) || x < 0 || x > 0xffff)) return true;
  const v4 = `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (mapped || nat64) return blocked.check(v4, 'ipv4');
  return blocked.check(address, 'ipv6');
}

export class UnsafeUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeUrlError';
  }
}

export interface ResolvedTarget {
  url: URL;
  /** The checked addresses, in resolver order; requests connect to the first. */
  addresses: Array<{ address: string; family: 4 | 6 }>;
}

/**
 * Parse a user-supplied http(s) URL and resolve its host. Throws UnsafeUrlError for another
 * scheme, credentials in the URL, a name that does not resolve, or (unless `allowPrivate`) any
 * resolved address that is not public.
 */
export async function resolveSafeUrl(raw: string, allowPrivate: boolean): Promise<ResolvedTarget> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError('not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UnsafeUrlError('only http and https URLs are allowed');
  if (url.username || url.password) throw new UnsafeUrlError('credentials in the URL are not allowed');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await dnsLookup(host, { all: true, verbatim: true });
  } catch {
    throw new UnsafeUrlError(`the host name ${host} does not resolve`);
  }
  if (addresses.length === 0) throw new UnsafeUrlError(`the host name ${host} does not resolve`);
  if (!allowPrivate) {
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) throw new UnsafeUrlError(`${host} resolves to a private or reserved address (${bad.address})`);
  }
  return { url, addresses: addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })) };
}

export interface SafePostOptions {
  headers: Record<string, string>;
  timeoutMs: number;
  allowPrivate: boolean;
  /** Response bytes kept for the caller (the rest is drained and dropped). */
  maxResponseBytes?: number;
  signal?: AbortSignal;
}

export interface SafePostResult {
  status: number;
  /** The start of the response body (up to maxResponseBytes), as text. */
  body: string;
}

/**
 * POST a body to a user-supplied URL, re-checking its addresses now (see resolveSafeUrl) and
 * connecting to the checked one. Resolves with any HTTP status (3xx included: redirects are not
 * followed); rejects on a refused URL, a network error, the deadline or an abort.
 */
export async function safePost(rawUrl: string, body: string, opts: SafePostOptions): Promise<SafePostResult> {
  const { url, addresses } = await resolveSafeUrl(rawUrl, opts.allowPrivate);
  const pinned = addresses[0]!;
  // Node may ask for every address (autoSelectFamily); either way it only gets the checked one.
  const lookup: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [pinned]);
    else cb(null, pinned.address, pinned.family);
  };
  // One deadline for connect, send and the whole answer; the caller's signal aborts too.
  const deadline = new AbortController();
  const signal = deadline.signal;
  const timer = setTimeout(() => deadline.abort(), opts.timeoutMs);
  const onAbort = () => deadline.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const max = opts.maxResponseBytes ?? 1024;
  return new Promise<SafePostResult>((resolve, reject) => {
    if (opts.signal?.aborted) deadline.abort();
    const req = send(url, {
      method: 'POST',
      lookup,
      signal,
      agent: false,
      headers: { ...opts.headers, 'content-length': String(Buffer.byteLength(body)) },
    });
    req.on('error', (err) => reject(signal.aborted ? new Error(opts.signal?.aborted ? 'aborted' : `no answer within ${opts.timeoutMs} ms`, { cause: err }) : err));
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      const done = () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk.subarray(0, max - kept));
        kept += Math.min(chunk.length, max - kept);
        // Enough read: the rest of a large answer is not downloaded.
        if (kept >= max) {
          done();
          res.destroy();
        }
      });
      res.on('end', done);
      res.on('error', reject);
      // The deadline (or an abort) may cut a slow body short: that is a failure, not a short answer.
      res.on('close', () => {
        if (!res.complete) reject(new Error(signal.aborted ? `no answer within ${opts.timeoutMs} ms` : 'the response was cut off'));
      });
    });
    req.end(body);
  }).finally(() => {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  });
}

/** A GET answered with a status other than 2xx (after the redirects it was allowed to follow). */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`answered HTTP ${status}`);
    this.name = 'HttpStatusError';
  }
}

/** A body larger than the cap (announced by Content-Length, or counted while streaming). */
export class ResponseTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the response is larger than ${maxBytes} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

export interface SafeGetOptions {
  /** Request headers. Authorization is sent to the first URL's origin only: dropped on a redirect elsewhere. */
  headers?: Record<string, string>;
  /** One deadline for every hop, from the first connect to the last byte. */
  timeoutMs: number;
  allowPrivate: boolean;
  /** Largest body accepted; past it the download is aborted (ResponseTooLargeError). */
  maxBytes: number;
  /** Redirects followed (each hop checked again like the first); default 3. */
  maxRedirects?: number;
  signal?: AbortSignal;
  /** Resolves and checks each hop (default resolveSafeUrl); tests replace it to fake DNS. */
  resolve?: (url: string, allowPrivate: boolean) => Promise<ResolvedTarget>;
}

export interface SafeGetResult {
  /** The final URL (after redirects). Never log it: platform URLs may carry tokens. */
  url: string;
  status: number;
  /** The Content-Type the server claimed (not to be trusted for what the bytes are). */
  contentType: string | null;
  body: Buffer;
}

/**
 * GET from an address that comes from outside (platform media URLs, SECURITY.md class E): every
 * hop is resolved and checked like safePost does (all addresses public unless allowPrivate, the
 * connection pinned to the checked address), redirects are followed here, at most maxRedirects
 * of them, and each new location is checked again before anything connects to it. One deadline
 * covers all hops; the body is streamed with a byte cap. Rejects with UnsafeUrlError (refused
 * address), HttpStatusError (non-2xx final answer), ResponseTooLargeError, or a network/deadline
 * error. Error messages never contain the URL's path or query (they may carry tokens).
 */
export function safeGet(rawUrl: string, opts: SafeGetOptions): Promise<SafeGetResult> {
  const resolveHop = opts.resolve ?? resolveSafeUrl;
  const maxRedirects = opts.maxRedirects ?? 3;
  return withDeadline(opts, async (signal) => {
    let firstOrigin: string | null = null;
    let current = rawUrl;
    for (let hop = 0; ; hop++) {
      if (signal.aborted) throw new Error(opts.signal?.aborted ? 'aborted' : `no answer within ${opts.timeoutMs} ms`);
      const target = await resolveHop(current, opts.allowPrivate);
      firstOrigin ??= target.url.origin;
      // Credentials go to the origin they were given for, never to where a redirect points.
      const headers = { ...opts.headers };
      if (target.url.origin !== firstOrigin) {
        for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization' || name.toLowerCase() === 'cookie') delete headers[name];
      }
      const answer = await requestOnce(target, 'GET', headers, undefined, signal, opts);
      if (answer.redirect !== undefined) {
        if (hop >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects`);
        try {
          current = new URL(answer.redirect, target.url).toString();
        } catch {
          throw new UnsafeUrlError('the redirect location is not a valid URL');
        }
        continue;
      }
      return { url: target.url.toString(), status: answer.status, contentType: answer.contentType, body: answer.body! };
    }
  });
}

/**
 * POST `body` and read the answer with safeGet's protections: the URL's addresses checked after
 * DNS (all public unless allowPrivate) and the connection pinned to the checked one, one deadline,
 * the answer streamed with a byte cap (ResponseTooLargeError), a non-2xx answer rejected with
 * HttpStatusError. For APIs that answer a POST with content (a gateway's media endpoint). Headers
 * may carry an API key: no redirect is ever followed (a 3xx is refused with UnsafeUrlError), so
 * the key and the body only ever go to the origin given. `maxRedirects` is ignored.
 */
export function safePostDownload(rawUrl: string, body: string, opts: SafeGetOptions): Promise<SafeGetResult> {
  const resolveHop = opts.resolve ?? resolveSafeUrl;
  return withDeadline(opts, async (signal) => {
    const target = await resolveHop(rawUrl, opts.allowPrivate);
    const answer = await requestOnce(target, 'POST', opts.headers ?? {}, body, signal, opts);
    if (answer.redirect !== undefined) throw new UnsafeUrlError(`the answer was a redirect (HTTP ${answer.status}); a POST follows none`);
    return { url: target.url.toString(), status: answer.status, contentType: answer.contentType, body: answer.body! };
  });
}

/**
 * Any API call (Chatwoot's, a gateway's) with safePostDownload's protections — addresses checked
 * after DNS, the connection pinned, one deadline, the answer capped, never a redirect (the headers
 * carry tokens) — whatever the method; every status is an answer here (a 4xx body says why).
 */
export function safeRequest(rawUrl: string, method: RequestMethod, body: Buffer | string | undefined, opts: SafeGetOptions): Promise<SafeGetResult> {
  const resolveHop = opts.resolve ?? resolveSafeUrl;
  return withDeadline(opts, async (signal) => {
    const target = await resolveHop(rawUrl, opts.allowPrivate);
    const answer = await requestOnce(target, method, opts.headers ?? {}, body, signal, opts, true);
    if (answer.redirect !== undefined) throw new UnsafeUrlError(`the answer was a redirect (HTTP ${answer.status}); API calls follow none`);
    return { url: target.url.toString(), status: answer.status, contentType: answer.contentType, body: answer.body! };
  });
}

export type RequestMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Runs `work` under one deadline (opts.timeoutMs) that the caller's signal can also cut short. */
async function withDeadline<T>(opts: SafeGetOptions, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), opts.timeoutMs);
  const onAbort = () => deadline.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) deadline.abort();
  try {
    return await work(deadline.signal);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** One request to a checked target: a redirect location, or the whole 2xx body (capped). */
function requestOnce(
  target: ResolvedTarget,
  method: RequestMethod,
  headers: Record<string, string>,
  body: Buffer | string | undefined,
  signal: AbortSignal,
  opts: SafeGetOptions,
  /** Read the body of any status (else a non-2xx rejects with HttpStatusError). */
  anyStatus = false,
): Promise<{ status: number; contentType: string | null; redirect?: string; body?: Buffer }> {
  const pinned = target.addresses[0]!;
  const lookup: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [pinned]);
    else cb(null, pinned.address, pinned.family);
  };
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  const timedOut = () => new Error(opts.signal?.aborted ? 'aborted' : `no answer within ${opts.timeoutMs} ms`);
  return new Promise((resolve, reject) => {
    const sent = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const req = send(target.url, { method, lookup, signal, agent: false, headers: sent });
    req.on('error', (err) => reject(signal.aborted ? timedOut() : err));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const contentType = res.headers['content-type'] ?? null;
      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        res.resume();
        resolve({ status, contentType, redirect: res.headers.location });
        req.destroy();
        return;
      }
      if (!anyStatus && (status < 200 || status > 299)) {
        res.resume();
        reject(new HttpStatusError(status));
        req.destroy();
        return;
      }
      const announced = Number(res.headers['content-length']);
      if (Number.isFinite(announced) && announced > opts.maxBytes) {
        reject(new ResponseTooLargeError(opts.maxBytes));
        res.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > opts.maxBytes) {
          failed = true;
          reject(new ResponseTooLargeError(opts.maxBytes));
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status, contentType, body: Buffer.concat(chunks) }));
      res.on('error', (err) => reject(signal.aborted ? timedOut() : err));
      res.on('close', () => {
        if (!res.complete && !failed) reject(signal.aborted ? timedOut() : new Error('the response was cut off'));
      });
    });
    req.end(body);
  });
}
