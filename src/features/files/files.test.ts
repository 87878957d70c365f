import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { startS3Server, type S3Server } from '../../../test/helpers/s3-server.ts';
import { contentDisposition, parseRange, servedContentType } from './serving.ts';

const MAX = 100_000;

/** A valid PNG of the given size (grey, 8-bit). */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const rows = Buffer.alloc((width + 1) * height, 0x80);
  for (let y = 0; y < height; y++) rows[y * (width + 1)] = 0;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}
const GIF_1x1 = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const HTML = Buffer.from('<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>');
const SVG = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><circle r="4"/></svg>');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function multipart(filename: string, bytes: Buffer, clientType = 'application/octet-stream') {
  const boundary = `----parley${randomBytes(8).toString('hex')}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${clientType}\r\n\r\n`;
  return { payload: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]), type: `multipart/form-data; boundary=${boundary}` };
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

/** Upload, download and channel helpers over one test app. */
function client(t: () => TestApp) {
  const upload = async (who: TestUser | null, filename: string, bytes: Buffer, clientType?: string) => {
    const { payload, type } = multipart(filename, bytes, clientType);
    const res = await t().app.inject({ method: 'POST', url: '/api/v1/upload', payload, headers: { 'content-type': type, ...(who ? { authorization: `Bearer ${who.token}` } : {}) } });
    return Object.assign(res, { data: JSON.parse(res.body || 'null') });
  };
  const download = (who: TestUser | null, id: string, headers: Record<string, string> = {}) =>
    t().app.inject({ method: 'GET', url: `/api/v1/files/${id}`, headers: { ...headers, ...(who ? { authorization: `Bearer ${who.token}` } : {}) } });
  return { upload, download };
}

for (const dialect of testDialects()) {
  describe(`files (${dialect})`, () => {
    let t: TestApp;
    let dataDir: string;
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    let mallory: TestUser;
    const { upload, download } = client(() => t);
    before(async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'parley-files-test-'));
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', DATA_DIR: dataDir, UPLOAD_MAX_BYTES: String(MAX) } });
      const org = await makeOrg(t.services);
      alice = await makeUser(t.app, t.services, org.id, 'member');
      bob = await makeUser(t.app, t.services, org.id, 'member');
      carol = await makeUser(t.app, t.services, org.id, 'member');
      const other = await makeOrg(t.services);
      mallory = await makeUser(t.app, t.services, other.id, 'admin');
    });
    after(async () => {
      await t.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    let n = 0;
    const channel = async (opts: { private?: boolean; members?: TestUser[] } = {}) => {
      const r = await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `f-${dialect}-${++n}`, private: opts.private ?? true, members: (opts.members ?? [bob]).map((m) => m.id) } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data.id as string;
    };
    const send = (conversationId: string, body: Record<string, unknown>, who: TestUser = alice) => call(t.app, 'POST', `/api/v1/channels/${conversationId}/messages`, { token: who.token, body });

    it('uploads and downloads a PNG: sniffed type, dimensions, sha256, ETag, inline', async () => {
      const bytes = png(3, 2);
      const up = await upload(alice, 'photo.png', bytes, 'text/html');
      assert.equal(up.statusCode, 201, up.body);
      assert.equal(up.data.content_type, 'image/png', 'the client’s Content-Type is ignored');
      assert.equal(up.data.size, bytes.length);
      assert.equal(up.data.sha256, sha(bytes));
      assert.deepEqual([up.data.width, up.data.height], [3, 2]);
      assert.equal(up.data.filename, 'photo.png');
      assert.equal(up.data.url, `/api/v1/files/${up.data.id}`);
      const down = await download(alice, up.data.id);
      assert.equal(down.statusCode, 200);
      assert.equal(sha(down.rawPayload), sha(bytes));
      assert.equal(down.headers['content-type'], 'image/png');
      assert.equal(down.headers['content-length'], String(bytes.length));
      assert.equal(down.headers['content-disposition'], `inline; filename="photo.png"; filename*=UTF-8''photo.png`);
      assert.equal(down.headers['x-content-type-options'], 'nosniff');
      assert.equal(down.headers.etag, `"${sha(bytes)}"`);
      assert.match(String(down.headers['cache-control']), /^private/);
      assert.equal((await download(alice, up.data.id, { 'if-none-match': `"${sha(bytes)}"` })).statusCode, 304);
      const gif = await upload(alice, 'dot.gif', GIF_1x1);
      assert.equal(gif.data.content_type, 'image/gif');
      assert.deepEqual([gif.data.width, gif.data.height], [1, 1]);
    });

    it('over the size limit: 413 file.too_large and nothing stored; exactly the limit is fine', async () => {
      const filesBefore = await listFiles(join(dataDir, 'files'));
      const rowsBefore = await t.db.db.selectFrom('files').select('id').execute();
      const big = await upload(alice, 'big.bin', randomBytes(MAX + 1));
      assert.equal(big.statusCode, 413, big.body);
      assert.equal(big.data.error.code, 'file.too_large');
      assert.equal(big.data.error.details.max_bytes, MAX);
      const huge = await upload(alice, 'huge.bin', randomBytes(MAX + 200_000));
      assert.equal(huge.statusCode, 413, 'a Content-Length over the limit is refused before reading');
      assert.deepEqual(await listFiles(join(dataDir, 'files')), filesBefore, 'no bytes left in storage');
      assert.equal((await t.db.db.selectFrom('files').select('id').execute()).length, rowsBefore.length, 'no row');
      const exact = await upload(alice, 'exact.bin', randomBytes(MAX));
      assert.equal(exact.statusCode, 201, exact.body);
      assert.equal(exact.data.size, MAX);
    });

    it('the type comes from the bytes: PNG named evil.html is image/png; HTML named cat.png is served as a download', async () => {
      const pngUp = await upload(alice, 'evil.html', png(1, 1), 'text/html');
      assert.equal(pngUp.data.content_type, 'image/png');
      assert.equal((await download(alice, pngUp.data.id)).headers['content-type'], 'image/png');

      const htmlUp = await upload(alice, 'cat.png', HTML, 'image/png');
      assert.equal(htmlUp.data.content_type, 'text/html');
      const d = await download(alice, htmlUp.data.id);
      assert.equal(d.statusCode, 200);
      assert.equal(d.headers['content-type'], 'application/octet-stream');
      assert.match(String(d.headers['content-disposition']), /^attachment; /);
      assert.equal(d.headers['x-content-type-options'], 'nosniff');
      assert.match(String(d.headers['content-security-policy']), /sandbox/);
      assert.equal(d.body, HTML.toString(), 'the bytes are unchanged');
    });

    it('SVG (and other markup) is served as an attachment, never rendered', async () => {
      const up = await upload(alice, 'logo.svg', SVG, 'image/svg+xml');
      assert.equal(up.data.content_type, 'image/svg+xml');
      assert.equal(up.data.width, null);
      const d = await download(alice, up.data.id);
      assert.equal(d.headers['content-type'], 'application/octet-stream');
      assert.equal(d.headers['content-disposition'], `attachment; filename="logo.svg"; filename*=UTF-8''logo.svg`);
      const text = await upload(alice, 'notes.txt', Buffer.from('just some notes\n'));
      assert.equal(text.data.content_type, 'text/plain');
      assert.match(String((await download(alice, text.data.id)).headers['content-disposition']), /^attachment/);
    });

    it('file names are cleaned: folders, control and bidi characters dropped; UTF-8 in filename*', async () => {
      const up = await upload(alice, '../../etc/résumé\u202Efdp.exe', Buffer.from('x'));
      assert.equal(up.data.filename, 'résuméfdp.exe');
      const d = await download(alice, up.data.id);
      assert.equal(d.headers['content-disposition'], `attachment; filename="r_sum_fdp.exe"; filename*=UTF-8''r%C3%A9sum%C3%A9fdp.exe`);
    });

    it('serves byte ranges: 206 with Content-Range, 416 when unsatisfiable, whole file for several ranges', async () => {
      const bytes = Buffer.from('0123456789abcdefghij');
      const { data: f } = await upload(alice, 'r.txt', bytes);
      const part = await download(alice, f.id, { range: 'bytes=2-5' });
      assert.equal(part.statusCode, 206);
      assert.equal(part.body, '2345');
      assert.equal(part.headers['content-range'], 'bytes 2-5/20');
      assert.equal(part.headers['content-length'], '4');
      assert.equal((await download(alice, f.id, { range: 'bytes=-3' })).body, 'hij');
      assert.equal((await download(alice, f.id, { range: 'bytes=18-' })).body, 'ij');
      assert.equal((await download(alice, f.id, { range: 'bytes=15-99' })).body, 'fghij', 'the end is clamped');
      const bad = await download(alice, f.id, { range: 'bytes=20-' });
      assert.equal(bad.statusCode, 416);
      assert.equal(bad.headers['content-range'], 'bytes */20');
      assert.equal(JSON.parse(bad.body).error.code, 'file.range_not_satisfiable');
      const multi = await download(alice, f.id, { range: 'bytes=0-1,4-5' });
      assert.equal(multi.statusCode, 200);
      assert.equal(multi.body, bytes.toString());
      const stale = await download(alice, f.id, { range: 'bytes=0-1', 'if-range': '"something-else"' });
      assert.equal(stale.statusCode, 200, 'If-Range with another validator sends the whole file');
    });

    it('access matrix: uploader, member where it was posted, non-member, other org, anonymous; same 404 as a missing id', async () => {
      const { data: f } = await upload(alice, 'secret.png', png(2, 2));
      const c = await channel({ private: true, members: [bob] });
      assert.equal((await download(bob, f.id)).statusCode, 404, 'not posted anywhere yet: only the uploader');
      const sent = await send(c, { body: 'see attached', attachments: [f.id] });
      assert.equal(sent.statusCode, 201, sent.body);
      assert.equal((await download(alice, f.id)).statusCode, 200);
      assert.equal((await download(bob, f.id)).statusCode, 200);
      const carolR = await download(carol, f.id);
      const missing = await download(carol, randomUUID());
      assert.equal(carolR.statusCode, 404);
      assert.deepEqual(JSON.parse(carolR.body).error, JSON.parse(missing.body).error, 'forbidden looks exactly like missing');
      assert.equal(JSON.parse(carolR.body).error.code, 'file.not_found');
      const malloryR = await download(mallory, f.id);
      assert.equal(malloryR.statusCode, 404, 'an admin of another organization sees nothing');
      assert.deepEqual(JSON.parse(malloryR.body).error, JSON.parse(missing.body).error);
      assert.equal((await download(null, f.id)).statusCode, 401);
      assert.equal((await upload(null, 'x.txt', Buffer.from('x'))).statusCode, 401);

      // A public channel: whoever may read it may download what is posted there.
      const pub = await channel({ private: false, members: [] });
      const { data: g } = await upload(alice, 'public.txt', Buffer.from('hello all'));
      await send(pub, { body: '', attachments: [g.id] });
      assert.equal((await download(carol, g.id)).statusCode, 200);
      assert.equal((await download(mallory, g.id)).statusCode, 404);
    });

    it('a former member loses access', async () => {
      const { data: f } = await upload(alice, 'plan.txt', Buffer.from('the plan'));
      const c = await channel({ private: true, members: [bob] });
      await send(c, { body: 'plan', attachments: [f.id] });
      assert.equal((await download(bob, f.id)).statusCode, 200);
      const removed = await call(t.app, 'DELETE', `/api/v1/channels/${c}/members/${bob.id}`, { token: alice.token });
      assert.equal(removed.statusCode, 204, removed.body);
      assert.equal((await download(bob, f.id)).statusCode, 404);
    });

    it('two messages share a file: deleting one keeps it served; deleting both leaves it to the uploader', async () => {
      const { data: f } = await upload(alice, 'shared.txt', Buffer.from('shared bytes'));
      const c = await channel({ private: true, members: [bob] });
      const m1 = (await send(c, { body: 'first', attachments: [f.id] })).data;
      const m2 = (await send(c, { body: 'second', attachments: [f.id] })).data;
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${m1.id}`, { token: alice.token })).statusCode, 204);
      const still = await download(bob, f.id);
      assert.equal(still.statusCode, 200, 'still carried by the other message');
      assert.equal(still.body, 'shared bytes');
      const tomb = await call(t.app, 'GET', `/api/v1/messages/${m1.id}`, { token: bob.token });
      assert.deepEqual(tomb.data.attachments, [], 'a tombstone carries no files');
      assert.equal((await call(t.app, 'DELETE', `/api/v1/messages/${m2.id}`, { token: alice.token })).statusCode, 204);
      assert.equal((await download(bob, f.id)).statusCode, 404);
      assert.equal((await download(alice, f.id)).statusCode, 200, 'the uploader keeps the file');
    });

    it('messages carry attachments in order, on send, get and history; only your own files can be attached', async () => {
      const a = (await upload(alice, 'a.txt', Buffer.from('a'))).data;
      const b = (await upload(alice, 'b.png', png(4, 4))).data;
      const c = await channel({ private: true, members: [bob] });
      const sent = await send(c, { body: '', attachments: [b.id, a.id, b.id] });
      assert.equal(sent.statusCode, 201, sent.body);
      assert.deepEqual(sent.data.attachments.map((x: { id: string }) => x.id), [b.id, a.id], 'in order, duplicates dropped');
      assert.deepEqual(sent.data.attachments[0], b);
      const got = await call(t.app, 'GET', `/api/v1/messages/${sent.data.id}`, { token: bob.token });
      assert.deepEqual(got.data.attachments, sent.data.attachments);
      await send(c, { body: 'no files' });
      const hist = await call(t.app, 'GET', `/api/v1/channels/${c}/messages`, { token: bob.token });
      assert.deepEqual(hist.data.data.map((m: { attachments: unknown[] }) => m.attachments.length), [2, 0]);

      const bobs = (await upload(bob, 'bob.txt', Buffer.from('bob'))).data;
      const foreign = await send(c, { body: 'steal', attachments: [bobs.id] });
      assert.equal(foreign.statusCode, 400);
      assert.equal(foreign.data.error.code, 'file.invalid_attachment');
      assert.deepEqual(foreign.data.error.details.file_ids, [bobs.id]);
      const ghost = await send(c, { body: 'ghost', attachments: [randomUUID()] });
      assert.equal(ghost.data.error.code, 'file.invalid_attachment');
      assert.equal((await send(c, { body: 'many', attachments: Array.from({ length: 11 }, () => randomUUID()) })).statusCode, 400);
      const rows = await t.db.db.selectFrom('messages').select('id').where('conversation_id', '=', c).execute();
      assert.equal(rows.length, 2, 'refused sends store nothing');
      assert.equal((await download(bob, bobs.id)).statusCode, 200, 'bob’s own file');
      assert.equal((await download(alice, bobs.id)).statusCode, 404, 'and still only his');
    });

    it('refuses uploads that are not multipart or have no file part', async () => {
      const json = await call(t.app, 'POST', '/api/v1/upload', { token: alice.token, body: { file: 'x' } });
      assert.equal(json.statusCode, 415);
      const boundary = 'xyz';
      const empty = await t.app.inject({
        method: 'POST',
        url: '/api/v1/upload',
        headers: { authorization: `Bearer ${alice.token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
        payload: `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--${boundary}--\r\n`,
      });
      assert.equal(empty.statusCode, 400, empty.body);
      assert.equal(JSON.parse(empty.body).error.code, 'validation.failed');
      const other = await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: 'x' });
      assert.equal(other.statusCode, 415, 'no other route takes multipart');
    });
  });
}

describe('files over S3 (s3rver), end to end through the API', () => {
  let s3: S3Server;
  let t: TestApp;
  let alice: TestUser;
  let bob: TestUser;
  const { upload, download } = client(() => t);
  before(async () => {
    s3 = await startS3Server();
    t = await newTestApp({ env: { RATE_LIMIT_MAX: '0', UPLOAD_MAX_BYTES: String(MAX), ...s3.env() } });
    const org = await makeOrg(t.services);
    alice = await makeUser(t.app, t.services, org.id, 'member');
    bob = await makeUser(t.app, t.services, org.id, 'member');
  });
  after(async () => {
    await t.close();
    await s3.stop();
  });

  it('uploads to the bucket, serves whole files and ranges, enforces the limit and access', async () => {
    const bytes = png(5, 7);
    const up = await upload(alice, 'photo.png', bytes);
    assert.equal(up.statusCode, 201, up.body);
    assert.deepEqual([up.data.content_type, up.data.width, up.data.height, up.data.sha256], ['image/png', 5, 7, sha(bytes)]);
    const objects = await listFiles(join(s3.directory, s3.bucket));
    assert.ok(objects.some((p) => p.includes(up.data.id)), 'the object is in the bucket');
    const whole = await download(alice, up.data.id);
    assert.equal(sha(whole.rawPayload), sha(bytes));
    const part = await download(alice, up.data.id, { range: 'bytes=0-7' });
    assert.equal(part.statusCode, 206);
    assert.deepEqual([...part.rawPayload], [...bytes.subarray(0, 8)]);
    assert.equal((await download(bob, up.data.id)).statusCode, 404);

    const before = (await listFiles(join(s3.directory, s3.bucket))).length;
    const big = await upload(alice, 'big.bin', randomBytes(MAX + 1));
    assert.equal(big.statusCode, 413);
    assert.equal((await listFiles(join(s3.directory, s3.bucket))).length, before, 'nothing stored in the bucket');
  });

  it('when the object store is down, an upload fails with 500 (no hang, no row) and downloads too', async () => {
    const { data: f } = await upload(alice, 'kept.txt', Buffer.from('kept'));
    const rows = (await t.db.db.selectFrom('files').select('id').execute()).length;
    await s3.stop();
    const up = await upload(alice, 'lost.txt', randomBytes(10_000));
    assert.equal(up.statusCode, 500);
    assert.equal(up.data.error.code, 'internal');
    assert.equal((await t.db.db.selectFrom('files').select('id').execute()).length, rows);
    assert.equal((await download(alice, f.id)).statusCode, 500);
  });
});

describe('files: serving rules', () => {
  it('maps anything a browser could execute to application/octet-stream', () => {
    for (const t of ['text/html', 'image/svg+xml', 'application/xhtml+xml', 'text/xml', 'application/xml', 'application/javascript', 'text/javascript', 'text/css', 'application/rss+xml']) {
      assert.equal(servedContentType(t), 'application/octet-stream', t);
    }
    for (const t of ['image/png', 'image/jpeg', 'application/pdf', 'text/plain', 'video/mp4', 'application/zip']) assert.equal(servedContentType(t), t);
  });

  it('parses single byte ranges and ignores what it does not understand', () => {
    assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=-20', 10), { start: 0, end: 9 });
    assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
    assert.equal(parseRange('bytes=5-3', 10), null);
    assert.equal(parseRange('items=0-3', 10), null);
    assert.equal(parseRange(undefined, 10), null);
  });

  it('quotes file names safely in Content-Disposition', () => {
    assert.equal(contentDisposition('attachment', 'a "b"\\c.txt'), `attachment; filename="a _b__c.txt"; filename*=UTF-8''a%20%22b%22%5Cc.txt`);
    assert.equal(contentDisposition('inline', "it's (1).png"), `inline; filename="it's (1).png"; filename*=UTF-8''it%27s%20%281%29.png`);
  });
});
