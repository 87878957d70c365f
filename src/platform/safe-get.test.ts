import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpStatusError, resolveSafeUrl, ResponseTooLargeError, safeGet, UnsafeUrlError, type ResolvedTarget } from './safe-http.ts';

// SECURITY.md class E for downloads (platform media): checked after DNS, on every redirect, capped, with a deadline.
describe('safeGet: hardened downloads', () => {
  let server: Server;
  let port: number;
  let origin: string;
  const hits: string[] = [];
  const seenAuth: Record<string, string | undefined> = {};

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = req.url ?? '/';
      hits.push(path);
      seenAuth[path] = req.headers.authorization;
      if (path === '/bytes') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(Buffer.from('hello bytes'));
      } else if (path === '/to-loopback') {
        res.writeHead(302, { location: `http://127.0.0.1:${port}/secret` });
        res.end();
      } else if (path === '/to-localhost') {
        // Another origin (same server): the bearer token must not follow.
        res.writeHead(307, { location: `http://localhost:${port}/bytes` });
        res.end();
      } else if (path === '/relative') {
        res.writeHead(301, { location: '/bytes' });
        res.end();
      } else if (path === '/loop') {
        res.writeHead(302, { location: '/loop' });
        res.end();
      } else if (path === '/big-announced') {
        res.writeHead(200, { 'content-length': String(2048) });
        res.end(Buffer.alloc(2048));
      } else if (path === '/big-chunked') {
        // No Content-Length: the cap is counted while streaming.
        res.writeHead(200);
        let sent = 0;
        const tick = setInterval(() => {
          if (res.destroyed || sent > 100_000) {
            clearInterval(tick);
            res.end();
            return;
          }
          res.write(Buffer.alloc(512));
          sent += 512;
        }, 1);
      } else if (path === '/slow') {
        res.writeHead(200);
        res.write('a');
        const t = setTimeout(() => res.end('b'), 5000);
        res.on('close', () => clearTimeout(t));
      } else if (path === '/missing') {
        res.writeHead(404);
        res.end('no');
      } else {
        res.writeHead(200);
        res.end('secret');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    origin = `http://127.0.0.1:${port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const opts = { timeoutMs: 2000, allowPrivate: true, maxBytes: 1024 };

  it('refuses loopback, private, link-local and unspecified addresses after DNS when the switch is off', async () => {
    for (const url of [
      `http://localhost:${port}/bytes`,
      `http://127.0.0.1:${port}/bytes`,
      `http://[::1]:${port}/bytes`,
      `http://[::ffff:127.0.0.1]:${port}/bytes`,
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.5/',
      'http://192.168.1.1/',
      'http://0.0.0.0/',
      'http://[fe80::1]/',
      'ftp://example.com/file',
    ]) {
      await assert.rejects(safeGet(url, { ...opts, allowPrivate: false }), UnsafeUrlError, url);
    }
    assert.equal(hits.filter((h) => h === '/bytes').length, 0, 'nothing was requested');
  });

  it('downloads the bytes and reports the claimed content type (switch on for loopback)', async () => {
    const r = await safeGet(`${origin}/bytes`, opts);
    assert.equal(r.status, 200);
    assert.equal(r.contentType, 'text/plain');
    assert.equal(r.body.toString(), 'hello bytes');
  });

  it('re-checks every redirect: a public-looking first hop redirecting to 127.0.0.1 is refused before it is requested', async () => {
    // "public.example" stands for a host whose DNS answer is public; it is pinned to the local server here.
    const resolve = async (url: string, allowPrivate: boolean): Promise<ResolvedTarget> => {
      const u = new URL(url);
      if (u.hostname === 'public.example') return { url: u, addresses: [{ address: '127.0.0.1', family: 4 }] };
      return resolveSafeUrl(url, allowPrivate);
    };
    const before = hits.filter((h) => h === '/secret').length;
    await assert.rejects(safeGet(`http://public.example:${port}/to-loopback`, { ...opts, allowPrivate: false, resolve }), (err: unknown) => {
      assert.ok(err instanceof UnsafeUrlError);
      assert.match(err.message, /127\.0\.0\.1/);
      return true;
    });
    assert.ok(hits.includes('/to-loopback'), 'the first hop was requested');
    assert.equal(hits.filter((h) => h === '/secret').length, before, 'the private target never was');
    // With the test switch on, the same chain is followed.
    const ok = await safeGet(`http://public.example:${port}/to-loopback`, { ...opts, resolve });
    assert.equal(ok.body.toString(), 'secret');
  });

  it('follows relative redirects; the bearer token never follows to another origin; too many redirects fail', async () => {
    const rel = await safeGet(`${origin}/relative`, { ...opts, headers: { authorization: 'Bearer t0k' } });
    assert.equal(rel.body.toString(), 'hello bytes');
    assert.equal(seenAuth['/bytes'], 'Bearer t0k', 'same origin keeps it');
    const cross = await safeGet(`${origin}/to-localhost`, { ...opts, headers: { Authorization: 'Bearer t0k' } });
    assert.equal(cross.body.toString(), 'hello bytes');
    assert.equal(seenAuth['/to-localhost'], 'Bearer t0k');
    assert.equal(seenAuth['/bytes'], undefined, 'dropped on the cross-origin hop');
    await assert.rejects(safeGet(`${origin}/loop`, { ...opts, maxRedirects: 2 }), /more than 2 redirects/);
  });

  it('caps the body: announced by Content-Length or counted while streaming', async () => {
    await assert.rejects(safeGet(`${origin}/big-announced`, opts), ResponseTooLargeError);
    await assert.rejects(safeGet(`${origin}/big-chunked`, opts), ResponseTooLargeError);
    const exact = await safeGet(`${origin}/big-announced`, { ...opts, maxBytes: 2048 });
    assert.equal(exact.body.length, 2048);
  });

  it('gives up on a slow-drip answer at the deadline; a non-2xx answer is an HttpStatusError', async () => {
    const t0 = performance.now();
    await assert.rejects(safeGet(`${origin}/slow`, { ...opts, timeoutMs: 200 }), /no answer within 200 ms/);
    assert.ok(performance.now() - t0 < 2000);
    await assert.rejects(safeGet(`${origin}/missing`, opts), (err: unknown) => err instanceof HttpStatusError && err.status === 404);
  });
});
