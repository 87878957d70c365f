/**
 * Benchmark "relay": the Codechat/Evolution → Chatwoot relay end to end. A local Evolution gateway
 * and a local Chatwoot (the test fakes, speaking the products' documented APIs over real HTTP) run in
 * the harness; Parley runs as `npm start` does (SQLite, in-memory bus) with one relay session.
 *
 * 1. Text messages relayed per second: the gateway posts `messages.upsert` webhooks (100 customers,
 *    20 in flight) and the clock stops when Chatwoot holds every message. Chatwoot also posts its
 *    `message_created` webhook back for each one (as real Chatwoot does): the loop guard is in the
 *    measured path. Reference in the same run: the same number of messages posted straight to the
 *    local Chatwoot's API with the same concurrency (what the Chatwoot side alone can take).
 * 2. Transcoding a 30-second voice note each way (OGG/Opus → MP3 for Chatwoot, MP3 → OGG/Opus for
 *    WhatsApp) through Parley's transcoder (ffmpeg over pipes, with its limits) against the same
 *    ffmpeg command run alone on files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFakeChatwoot, type FakeChatwoot } from '../../test/helpers/fake-chatwoot.ts';
import { startFakeGateway } from '../../test/helpers/fake-gateway.ts';
import { transcode, transcodeArgs } from '../../src/platform/ffmpeg.ts';
import { type Benchmark, type BenchContext, type BenchOutcome, fmtMs, fmtPct, fmtRps, median } from './benchmark.ts';
import { formatSummary, summarizeProfile } from './cpuprofile.ts';
import { codeVersion, cpuSnapshot, type CpuSnapshot, describeMachine, loadAverage } from './machine.ts';
import { table } from './markdown.ts';
import { baseEnv, HOST, login, npmStartArgs } from './parley.ts';
import { freePort, makeTempDir, startService, waitForHttp } from './proc.ts';

const CUSTOMERS = 100;
const IN_FLIGHT = 20;
const WARMUP_MESSAGES = 300;
const TRANSCODE_RUNS = 5;
const VOICE_SECONDS = 30;

/** Runs `count` tasks with at most `width` at once. */
async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) await task(next++);
  }));
}

/** Waits until Chatwoot holds `target` incoming messages; fails when nothing arrived for 30 s. */
async function until(cw: FakeChatwoot, target: number): Promise<void> {
  let [seen, progress] = [0, Date.now()];
  for (;;) {
    const n = cw.messages().filter((m) => m.message_type === 'incoming').length;
    if (n >= target) return;
    if (n > seen) [seen, progress] = [n, Date.now()];
    if (Date.now() - progress > 30_000) throw new Error(`relay stalled: ${n} of ${target} messages in Chatwoot`);
    await sleep(5);
  }
}

function parleyEnv(port: number, dataDir: string): Record<string, string> {
  return {
    PORT: String(port),
    HOST,
    DATA_DIR: dataDir,
    DATABASE_URL: join(dataDir, 'parley.db'),
    SEED_DEMO: 'true',
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    METRICS_ENABLED: 'false',
    JWT_SECRET: randomBytes(36).toString('base64url'),
    RATE_LIMIT_MAX: '1000000000',
    OUTBOX_POLL_MS: '50',
    CHATWOOT_ALLOW_PRIVATE: 'true',
    MEDIA_ALLOW_PRIVATE: 'true',
    DOTENV_CONFIG_PATH: join(dataDir, 'no-such.env'),
  };
}
const SHOWN_ENV = 'PORT=<free port> HOST=127.0.0.1 DATA_DIR=<temp dir> DATABASE_URL=<temp dir>/parley.db SEED_DEMO=true NODE_ENV=development LOG_LEVEL=warn METRICS_ENABLED=false JWT_SECRET=<random> RATE_LIMIT_MAX=1000000000 OUTBOX_POLL_MS=50 CHATWOOT_ALLOW_PRIVATE=true MEDIA_ALLOW_PRIVATE=true';

interface TranscodeRun {
  way: string;
  parleyMs: number;
  ffmpegMs: number;
}

/** Median time of Parley's transcode() and of the same ffmpeg arguments alone (file in, file out). */
async function transcodeBench(dir: string, way: string, input: Buffer, inName: string, target: 'mp3' | 'ogg_opus', outName: string): Promise<TranscodeRun> {
  const inPath = join(dir, inName);
  writeFileSync(inPath, input);
  const parley: number[] = [];
  const alone: number[] = [];
  for (let i = 0; i < TRANSCODE_RUNS; i++) {
    let t = performance.now();
    await transcode(input, target, { timeoutMs: 120_000, maxOutputBytes: 64 * 1024 * 1024 });
    parley.push(performance.now() - t);
    t = performance.now();
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', inPath, ...transcodeArgs(target), join(dir, outName)]);
    if (r.status !== 0) throw new Error(`ffmpeg alone failed: ${r.stderr.toString()}`);
    alone.push(performance.now() - t);
  }
  return { way, parleyMs: median(parley), ffmpegMs: median(alone) };
}

async function run(ctx: BenchContext): Promise<BenchOutcome> {
  const { root, protocol } = ctx;
  const started = new Date();
  const code = codeVersion(root);
  const loadBefore = loadAverage();
  const rounds = protocol.rounds;
  const perRound = Math.max(500, protocol.durationSec * 200);

  const cw = await startFakeChatwoot();
  const gw = await startFakeGateway({ kind: 'evolution' });
  const port = await freePort();
  const dataDir = makeTempDir('parley-bench-relay-');
  // --cpu-prof: Parley writes a V8 profile on exit, summarized below (the figures are then not written).
  const profiling = ctx.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${ctx.resultsDir}`] : [];
  const parley = startService('parley', process.execPath, [...profiling, ...npmStartArgs(root)], { cwd: root, env: { ...baseEnv(), ...parleyEnv(port, dataDir) } });
  const base = `http://${HOST}:${port}`;
  await waitForHttp(parley, `${base}/health`, 120_000);
  const token = await login(base, 'admin');
  const made = await fetch(`${base}/api/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ description: 'bench', chatwoot: { url: cw.url, account_id: cw.accountId, inbox_id: cw.inboxId, token: cw.token }, gateway: { kind: 'evolution', base_url: gw.url, instance: gw.instance, api_key: gw.apiKey } }),
  });
  const session = (await made.json()) as { gateway: { webhook_url: string }; chatwoot: { webhook_url: string } };
  if (made.status !== 201) throw new Error(`creating the session answered ${made.status}: ${JSON.stringify(session)}`);
  const local = (u: string) => `${base}${new URL(u).pathname}${new URL(u).search}`;
  gw.webhookUrl = local(session.gateway.webhook_url);
  cw.webhookUrl = local(session.chatwoot.webhook_url);

  let sent = 0;
  const relayRound = async (count: number): Promise<number> => {
    const target = cw.messages().filter((m) => m.message_type === 'incoming').length + count;
    const t = performance.now();
    await pool(count, IN_FLIGHT, async () => {
      const i = sent++;
      const { status } = await gw.deliverInbound({ from: `55119${String(10_000_000 + (i % CUSTOMERS)).padStart(8, '0')}`, pushName: `Cliente ${i % CUSTOMERS}`, text: `mensagem ${i}` });
      if (status !== 200) throw new Error(`Parley answered ${status} to a gateway webhook`);
    });
    await until(cw, target);
    return count / ((performance.now() - t) / 1000);
  };
  ctx.log(`relay: warm-up, ${WARMUP_MESSAGES} messages`);
  await relayRound(WARMUP_MESSAGES);
  const relayRates: number[] = [];
  // CPU of the machine used by Parley and by the harness (both fakes run in it) during the rounds.
  const [allBefore, harnessBefore] = [cpuSnapshot([parley.pid]), cpuSnapshot([])];
  for (let r = 0; r < rounds; r++) {
    relayRates.push(await relayRound(perRound));
    ctx.log(`relay round ${r + 1}: ${fmtRps(relayRates.at(-1)!)} messages/s`);
  }
  const [allAfter, harnessAfter] = [cpuSnapshot([parley.pid]), cpuSnapshot([])];
  const share = (a: CpuSnapshot | null, b: CpuSnapshot | null) => (a && b && b.total > a.total ? (b.ours - a.ours) / (b.total - a.total) : null);
  const harnessShare = share(harnessBefore, harnessAfter);
  const bothShare = share(allBefore, allAfter);
  const parleyShare = bothShare !== null && harnessShare !== null ? bothShare - harnessShare : null;
  // Nothing doubled or lost: one Chatwoot message per gateway message, one conversation per customer.
  const incoming = cw.messages().filter((m) => m.message_type === 'incoming');
  const distinct = new Set(incoming.map((m) => m.content)).size;
  if (incoming.length !== sent || distinct !== sent) throw new Error(`Chatwoot holds ${incoming.length} messages (${distinct} distinct) for ${sent} sent`);
  if (cw.conversations.length !== CUSTOMERS) throw new Error(`${cw.conversations.length} Chatwoot conversations for ${CUSTOMERS} customers`);
  await parley.stop();
  if (ctx.cpuProfile) {
    const file = readdirSync(ctx.resultsDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) ctx.log(formatSummary(summarizeProfile(join(ctx.resultsDir, file), root, 40)));
  }
  cw.webhookUrl = undefined; // nobody to notify now: the reference measures the API alone

  // The Chatwoot side alone: the same number of messages straight into its API, same concurrency.
  const conversationIds = cw.conversations.map((c) => c.id);
  const direct: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    await pool(perRound, IN_FLIGHT, async (i) => {
      const res = await fetch(`${cw.url}/api/v1/accounts/${cw.accountId}/conversations/${conversationIds[i % conversationIds.length]}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', api_access_token: cw.token },
        body: JSON.stringify({ content: `direct ${r}-${i}`, message_type: 'incoming', source_id: `direct:${r}:${i}` }),
      });
      await res.text();
      if (res.status !== 200) throw new Error(`Chatwoot answered ${res.status}`);
    });
    direct.push(perRound / ((performance.now() - t) / 1000));
  }
  await gw.close();
  await cw.close();

  // Voice notes, 30 seconds (a voice-like sweep, so the encoders have work to do).
  const lavfi = `sine=frequency=220:beep_factor=4:duration=${VOICE_SECONDS}`;
  const ogg = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', lavfi, '-ac', '1', '-c:a', 'libopus', '-b:a', '24k', '-f', 'ogg', 'pipe:1'], { maxBuffer: 64 << 20 });
  const mp3 = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', lavfi, '-ac', '1', '-c:a', 'libmp3lame', '-b:a', '64k', '-f', 'mp3', 'pipe:1'], { maxBuffer: 64 << 20 });
  const transcodes = [
    await transcodeBench(ctx.resultsDir, 'OGG/Opus → MP3 (to Chatwoot)', ogg, 'voice.ogg', 'mp3', 'out.mp3'),
    await transcodeBench(ctx.resultsDir, 'MP3 → OGG/Opus (to WhatsApp)', mp3, 'reply.mp3', 'ogg_opus', 'out.ogg'),
  ];
  for (const x of transcodes) ctx.log(`${x.way}: Parley ${fmtMs(x.parleyMs)}, ffmpeg alone ${fmtMs(x.ffmpegMs)}`);

  const relayMedian = median(relayRates);
  const directMedian = median(direct);
  writeFileSync(join(ctx.resultsDir, 'rounds.json'), JSON.stringify({ relayRates, direct, transcodes }, null, 2));
  const summary = [
    `relay: ${fmtRps(relayMedian)} text messages/s gateway → Chatwoot end to end (median of ${rounds} rounds of ${perRound}); Chatwoot's API alone ${fmtRps(directMedian)}/s (${(relayMedian / directMedian).toFixed(2)}×)`,
    ...transcodes.map((x) => `  ${x.way}, ${VOICE_SECONDS}-s voice note: ${fmtMs(x.parleyMs)} vs ffmpeg alone ${fmtMs(x.ffmpegMs)} (${(x.parleyMs / x.ffmpegMs).toFixed(2)}×)`),
  ].join('\n');
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(', ');
  const markdown = `## Relay: Codechat/Evolution → Chatwoot, and voice-note transcoding

The issue names no target numbers: these are the measurements it asks for, with a reference taken in the same run.

${table(
  ['text messages, gateway → Chatwoot', 'median of rounds', 'rounds', 'reference in the same run', 'ratio'],
  [[`${perRound} per round, ${CUSTOMERS} customers, ${IN_FLIGHT} in flight`, `**${fmtRps(relayMedian)} messages/s**`, relayRates.map(fmtRps).join(', '), `Chatwoot's API alone: ${fmtRps(directMedian)} messages/s`, `${(relayMedian / directMedian).toFixed(2)}×`]],
  ['l', 'r', 'l', 'l', 'r'],
)}

${table(
  [`${VOICE_SECONDS}-second voice note`, `Parley (median of ${TRANSCODE_RUNS})`, 'the ffmpeg command alone', 'ratio'],
  transcodes.map((x) => [x.way, fmtMs(x.parleyMs), fmtMs(x.ffmpegMs), `${(x.parleyMs / x.ffmpegMs).toFixed(2)}×`]),
  ['l', 'r', 'r', 'r'],
)}

- Date: ${started.toISOString().replace(/\.\d+Z$/, 'Z')}
- Code: commit ${code}
- Machine: ${describeMachine(ctx.machine)}
- Load average (1, 5, 15 min) before the run: ${load(loadBefore)}; during the text rounds Parley used ${fmtPct(parleyShare)} of the machine's CPU and the harness with both fakes ${fmtPct(harnessShare)} (100 % = both cores)
- Command: \`${ctx.command}\`${ctx.command === 'npm run bench' ? ' (this one alone: `npm run bench -- relay`)' : ''}
- Text: Parley started as \`npm start\` does (\`${npmStartArgs(root).join(' ')}\` after \`node\`) on SQLite with \`${SHOWN_ENV}\`; one relay session (Evolution kind). The local gateway (test/helpers/fake-gateway.ts) posts \`messages.upsert\` webhooks with ${IN_FLIGHT} in flight from ${CUSTOMERS} customers; a round ends when the local Chatwoot (test/helpers/fake-chatwoot.ts) holds every message of it. Each created message is also delivered back to Parley as Chatwoot's \`message_created\` webhook (dropped by the loop guard), as Chatwoot does. ${WARMUP_MESSAGES} warm-up messages first (the first of each customer also creates its contact and conversation there). Checked after the rounds: one Chatwoot message per gateway message, none doubled, one conversation per customer. Both fakes run in the harness process, on the same 2 cores as Parley.
- Reference: the same number of messages per round posted straight to the local Chatwoot's message API (JSON, ${IN_FLIGHT} in flight, no webhook deliveries) — what the Chatwoot side alone takes on this machine.
- Voice notes: a ${VOICE_SECONDS}-second mono tone sweep (lavfi \`${lavfi}\`), encoded as OGG/Opus 24 kb/s and MP3 64 kb/s. "Parley" is src/platform/ffmpeg.ts \`transcode()\` (ffmpeg spawned, \`pipe:0\` → \`pipe:1\`, time and size limits), as the relay calls it; "alone" is \`ffmpeg -i <file> <the same output arguments> <file>\`. ${TRANSCODE_RUNS} runs each, alternating. Raw figures in \`bench/.results/\`.
`;
  return { status: 'measured', summary, markdown };
}

export const relay: Benchmark = { id: 'relay', title: 'Codechat/Evolution → Chatwoot relay rate; voice-note transcoding vs ffmpeg alone', run };
