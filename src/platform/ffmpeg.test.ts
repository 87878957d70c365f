import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { probeCodec, transcode, TranscodeError } from './ffmpeg.ts';

/** A sine tone made by ffmpeg itself, in the given container (`mp3`, `wav`). */
function tone(format: 'mp3' | 'wav', seconds = 1): Buffer {
  return execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`, '-f', format, 'pipe:1'], { maxBuffer: 64 * 1024 * 1024 });
}

const OPTS = { timeoutMs: 20_000, maxOutputBytes: 5 * 1024 * 1024 };

describe('ffmpeg transcoding over pipes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ffmpeg-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const input of ['mp3', 'wav'] as const) {
    it(`${input} → OGG/Opus voice note: mono, 48 kHz`, async () => {
      const out = await transcode(tone(input), 'ogg_opus', OPTS);
      assert.equal(out.subarray(0, 4).toString('latin1'), 'OggS');
      assert.deepEqual(await probeCodec(out), { format: 'ogg', codec: 'opus', channels: 1, sampleRate: 48000 });
    });
  }

  it('mp3 → M4A/AAC (fragmented MP4 on a pipe)', async () => {
    const out = await transcode(tone('mp3'), 'm4a_aac', OPTS);
    const probed = await probeCodec(out);
    assert.equal(probed.codec, 'aac');
    assert.equal(probed.channels, 1);
    assert.match(probed.format, /mp4|m4a/);
  });

  it('ogg → mp3 (what the Chatwoot relay needs)', async () => {
    const ogg = await transcode(tone('wav'), 'ogg_opus', OPTS);
    assert.equal((await probeCodec(await transcode(ogg, 'mp3', OPTS))).codec, 'mp3');
  });

  it('garbage input fails cleanly with ffmpeg’s reason', async () => {
    await assert.rejects(transcode(Buffer.from('this is not audio at all, just text'.repeat(50)), 'ogg_opus', OPTS), (err: unknown) => {
      assert.ok(err instanceof TranscodeError);
      assert.equal(err.reason, 'failed');
      assert.match(err.message, /^ffmpeg failed \(exit \d+\): .*(Invalid data|could not find|Invalid argument)/i);
      return true;
    });
  });

  it('output past the cap kills the process', async () => {
    await assert.rejects(transcode(tone('wav', 5), 'ogg_opus', { ...OPTS, maxOutputBytes: 200 }), (err: unknown) => err instanceof TranscodeError && err.reason === 'too_large');
  });

  it('a hung process is killed at the time limit', async () => {
    // A stand-in "ffmpeg" that never answers (and never reads stdin).
    const hang = join(dir, 'hang.sh');
    writeFileSync(hang, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(hang, 0o755);
    const start = Date.now();
    await assert.rejects(transcode(tone('mp3'), 'ogg_opus', { ...OPTS, timeoutMs: 300, ffmpegPath: hang }), (err: unknown) => err instanceof TranscodeError && err.reason === 'timeout');
    assert.ok(Date.now() - start < 3000, 'rejected soon after the limit');
    // And the real ffmpeg on a long input with a tiny limit.
    await assert.rejects(transcode(tone('wav', 60), 'm4a_aac', { ...OPTS, timeoutMs: 50 }), (err: unknown) => err instanceof TranscodeError && err.reason === 'timeout');
  });

  it('a missing binary is a spawn error, not a crash', async () => {
    await assert.rejects(transcode(tone('mp3'), 'ogg_opus', { ...OPTS, ffmpegPath: join(dir, 'no-such-ffmpeg') }), (err: unknown) => err instanceof TranscodeError && err.reason === 'spawn');
  });
});
