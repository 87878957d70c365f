import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { InvalidStorageKeyError, type FileStorage } from './file-storage.ts';

/** Makes a fresh storage for the suite; `stop` releases what `make` started. */
export interface StorageFactory {
  make(): Promise<FileStorage>;
  stop?(): Promise<void>;
}

const bytesOf = async (s: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
const key = () => `org-${randomBytes(4).toString('hex')}/${randomBytes(8).toString('hex')}`;

/** A stream of `chunks` chunks of `size` bytes that fails instead of ending, when asked to. */
function chunked(chunks: number, size: number, failAtEnd = false): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks) this.push(Buffer.alloc(size, i++ % 251));
      else if (failAtEnd) this.destroy(new Error('client went away'));
      else this.push(null);
    },
  });
}

/** One suite for every FileStorage (Centrifuge mapBrokerFactory). */
export function fileStorageContract(name: string, f: StorageFactory): void {
  describe(`FileStorage contract: ${name}`, () => {
    let s: FileStorage;
    before(async () => {
      s = await f.make();
    });
    after(async () => {
      await s.close();
      await f.stop?.();
    });

    it('puts bytes and gets them back, whole and by range', async () => {
      const k = key();
      assert.deepEqual(await s.put(k, Buffer.from('hello, world')), { size: 12 });
      const whole = await s.get(k);
      assert.ok(whole);
      assert.equal(whole.size, 12);
      assert.equal(await text(whole.stream), 'hello, world');
      const part = await s.get(k, { start: 7, end: 11 });
      assert.ok(part);
      assert.equal(part.size, 12, 'size is the whole object’s');
      assert.equal(await text(part.stream), 'world');
      const one = await s.get(k, { start: 0, end: 0 });
      assert.equal(await text(one!.stream), 'h');
    });

    it('streams a body of several parts (6 MB: a multipart upload on S3) and counts its size', async () => {
      const k = key();
      const { size } = await s.put(k, chunked(96, 64 * 1024));
      assert.equal(size, 6 * 1024 * 1024);
      const got = await s.get(k);
      const bytes = await bytesOf(got!.stream);
      assert.equal(bytes.length, size);
      assert.equal(bytes[64 * 1024 * 95], 95 % 251);
      const tail = await s.get(k, { start: size - 3, end: size - 1 });
      assert.deepEqual([...(await bytesOf(tail!.stream))], [95, 95, 95]);
    });

    it('stores empty objects', async () => {
      const k = key();
      assert.deepEqual(await s.put(k, new Uint8Array(0)), { size: 0 });
      const got = await s.get(k);
      assert.equal(got!.size, 0);
      assert.equal((await bytesOf(got!.stream)).length, 0);
    });

    it('a body that fails leaves nothing under the key, small or multipart', async () => {
      for (const [chunks, size] of [[3, 1000], [100, 64 * 1024]] as const) {
        const k = key();
        await assert.rejects(s.put(k, chunked(chunks, size, true)), /client went away/);
        assert.equal(await s.get(k), null);
      }
    });

    it('put replaces; delete removes and is idempotent; a missing key is null', async () => {
      const k = key();
      await s.put(k, Buffer.from('one'));
      await s.put(k, Readable.from([Buffer.from('two')]));
      assert.equal(await text((await s.get(k))!.stream), 'two');
      await s.delete(k);
      assert.equal(await s.get(k), null);
      await s.delete(k);
      assert.equal(await s.get(key()), null);
    });

    it('refuses keys that could escape or hide: absolute, .., dot names, empty', async () => {
      for (const bad of ['', '/etc/passwd', '../x', 'a/../../x', 'a//b', '.hidden', 'a/.tmp', 'a\\b', 'a b', 'x'.repeat(513)]) {
        await assert.rejects(s.put(bad, Buffer.from('x')), InvalidStorageKeyError, bad);
        await assert.rejects(s.get(bad), InvalidStorageKeyError, bad);
        await assert.rejects(s.delete(bad), InvalidStorageKeyError, bad);
      }
    });

    it('a range outside the object is a RangeError', async () => {
      const k = key();
      await s.put(k, Buffer.from('0123456789'));
      await assert.rejects(s.get(k, { start: 5, end: 10 }), RangeError);
      await assert.rejects(s.get(k, { start: 12, end: 15 }), RangeError);
      await assert.rejects(s.get(k, { start: 3, end: 2 }), RangeError);
    });
  });
}
