import { spawn } from 'node:child_process';

/**
 * Audio transcoding with the system's ffmpeg (issue 6: voice notes out; the Chatwoot relay next).
 *
 * Bytes go in on stdin and come out on stdout: no temporary files, nothing on disk to clean up.
 * Every run has a time limit and an output cap; past either, the process is killed (SIGKILL) and
 * the promise rejects with a TranscodeError. stderr is kept (bounded) for the error message.
 *
 * NOTE: over a pipe ffmpeg cannot seek its input, so an MP4 / M4A input whose `moov` box comes
 * after the media data cannot be read; callers fall back to sending the original.
 */
export type TranscodeTarget = 'ogg_opus' | 'm4a_aac' | 'mp3';

export interface TranscodeOptions {
  /** Kill the process and reject after this many milliseconds. */
  timeoutMs: number;
  /** Kill the process and reject once the output grows past this many bytes. */
  maxOutputBytes: number;
  /** The ffmpeg binary (default `ffmpeg`, from PATH). */
  ffmpegPath?: string;
}

/** The content type of each target's output. */
export const TARGET_CONTENT_TYPE: Record<TranscodeTarget, string> = {
  ogg_opus: 'audio/ogg',
  m4a_aac: 'audio/mp4',
  mp3: 'audio/mpeg',
};

// Voice notes: mono, speech bitrates. WhatsApp and Telegram want OGG/Opus (48 kHz is Opus's own
// rate); Instagram takes M4A/AAC — fragmented MP4, because a plain MP4 needs a seekable output.
const TARGET_ARGS: Record<TranscodeTarget, string[]> = {
  ogg_opus: ['-c:a', 'libopus', '-b:a', '32k', '-ar', '48000', '-application', 'voip', '-f', 'ogg'],
  m4a_aac: ['-c:a', 'aac', '-b:a', '64k', '-ar', '44100', '-f', 'ipod', '-movflags', 'frag_keyframe+empty_moov'],
  mp3: ['-c:a', 'libmp3lame', '-b:a', '64k', '-ar', '44100', '-f', 'mp3'],
};

/** The output arguments of a target (after the input), as transcode() gives them to ffmpeg. */
export function transcodeArgs(target: TranscodeTarget): string[] {
  return ['-vn', '-sn', '-dn', '-map_metadata', '-1', '-ac', '1', ...TARGET_ARGS[target]];
}

const STDERR_MAX = 4096;

export class TranscodeError extends Error {
  constructor(
    message: string,
    /** Why it failed: ffmpeg missing, the input refused, too slow, too big. */
    readonly reason: 'spawn' | 'failed' | 'timeout' | 'too_large',
  ) {
    super(message);
    this.name = 'TranscodeError';
  }
}

/** Convert `input` (any audio ffmpeg reads from a pipe) to `target`: mono, metadata dropped, no video. */
export function transcode(input: Buffer, target: TranscodeTarget, opts: TranscodeOptions): Promise<Buffer> {
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', 'pipe:0', ...transcodeArgs(target), 'pipe:1'];
  return run(opts.ffmpegPath ?? 'ffmpeg', args, input, opts).then((r) => {
    if (r.stdout.length === 0) throw new TranscodeError(`ffmpeg produced no output${r.stderr ? `: ${r.stderr}` : ''}`, 'failed');
    return r.stdout;
  });
}

/** The format and the first audio stream's codec of `bytes` (ffprobe on a pipe); for tests and checks. */
export async function probeCodec(bytes: Buffer, opts: { timeoutMs?: number; ffprobePath?: string } = {}): Promise<{ format: string; codec: string | null; channels: number | null; sampleRate: number | null }> {
  const args = ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_name,channels,sample_rate:format=format_name', '-of', 'json', 'pipe:0'];
  const r = await run(opts.ffprobePath ?? 'ffprobe', args, bytes, { timeoutMs: opts.timeoutMs ?? 10_000, maxOutputBytes: 64 * 1024 });
  const json = JSON.parse(r.stdout.toString('utf8')) as { streams?: Array<{ codec_name?: string; channels?: number; sample_rate?: string }>; format?: { format_name?: string } };
  const s = json.streams?.[0];
  return { format: json.format?.format_name ?? '', codec: s?.codec_name ?? null, channels: s?.channels ?? null, sampleRate: s?.sample_rate ? Number(s.sample_rate) : null };
}

/** Run a tool with `input` on stdin; resolve with stdout when it exits 0, else reject with a TranscodeError. */
function run(cmd: string, args: string[], input: Buffer, opts: { timeoutMs: number; maxOutputBytes: number }): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let failure: TranscodeError | null = null;
    const kill = (err: TranscodeError) => {
      failure ??= err;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(new TranscodeError(`${cmd} took longer than ${opts.timeoutMs} ms`, 'timeout')), opts.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > opts.maxOutputBytes) kill(new TranscodeError(`${cmd} output is larger than ${opts.maxOutputBytes} bytes`, 'too_large'));
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_MAX) stderr += chunk.toString('utf8').slice(0, STDERR_MAX - stderr.length);
    });
    // ffmpeg may stop reading early (bad input, killed): EPIPE on stdin is expected then.
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new TranscodeError(`${cmd} could not be started: ${err.message}`, 'spawn'));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const detail = stderr.trim().split('\n').slice(-3).join(' | ');
      if (failure) reject(failure);
      else if (code !== 0) reject(new TranscodeError(`${cmd} failed (${signal ?? `exit ${code}`})${detail ? `: ${detail}` : ''}`, 'failed'));
      else resolve({ stdout: Buffer.concat(out), stderr: detail });
    });
    child.stdin.end(input);
  });
}
