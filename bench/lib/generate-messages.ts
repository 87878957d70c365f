/**
 * A large, reproducible Parley SQLite database for the history and search benchmarks:
 * 1,000,000 messages in 100 public channels of the demo organization, one of them ("bench-big")
 * holding 200,000 (every 5th message) for deep pages, the other 800,000 spread over 99 channels.
 *
 * The schema and the demo users come from Parley itself: it is started once (as `npm start` does)
 * with SEED_DEMO=true on an empty file, which migrates and seeds, then stopped. The messages are then
 * written directly with prepared better-sqlite3 statements in large transactions (the FTS triggers
 * of migration 0005 index them as they go); conversations.last_seq / last_message_at match the
 * messages, and admin, agent1 and agent2 are members of every channel.
 *
 * Text: words drawn with a Zipf distribution (s = 1) from a vocabulary of common English words
 * followed by a long tail of made-up words, with a fixed-seed PRNG (mulberry32), so every run
 * builds the same database. The result is cached in bench/.results/dataset/ and reused while its
 * message count and generator version match.
 *
 * Also usable alone: `npx tsx bench/lib/generate-messages.ts` (prints the file path).
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { baseEnv, HOST, npmStartArgs } from './parley.ts';
import { freePort, startService, waitForHttp } from './proc.ts';

/** Bump when what is generated changes, so that a cached database is rebuilt. */
const GENERATOR_VERSION = 1;
export const TOTAL_MESSAGES = 1_000_000;
export const CHANNELS = 100;
/** Every BIG_EVERY-th message goes to the big channel: 200,000 of 1,000,000. */
const BIG_EVERY = 5;
const BATCH = 50_000;
const SEED = 0x5eed_2026;

export interface Dataset {
  file: string;
  version: number;
  messages: number;
  channels: number;
  bigChannel: { id: string; name: string; messages: number };
  /** Words for the search benchmark, with the number of messages containing each. */
  words: { rare: WordStat; mid: WordStat; common: WordStat };
  generatedInSec: number;
}
export interface WordStat {
  word: string;
  messages: number;
}

/** mulberry32: a tiny deterministic 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMMON = `the to and a of i you it is that in for on we this be have with can not are
is your my will at do if so just but what all about me please was get our from they there as
ok thanks hi hello yes no can't know think one like up out time need when order customer help
issue would could should how new now today tomorrow yesterday check see let send sent back
account payment invoice refund delivery shipping package address email phone call update team
meeting sorry sure great good problem error login password reset ticket support agent channel
message reply thread file report release deploy server client bug fix test review build change
version feature request week month morning afternoon evening still again already soon later
working done ready available looks seems maybe probably also only really very much more less
some any every each other same different first last next before after while because since until
price plan trial subscription upgrade downgrade cancel renew discount coupon cart checkout
product item stock warehouse tracking courier label return exchange damaged missing late early
schedule calendar slot booking confirm confirmed pending approved rejected status priority urgent
note details information question answer contact name number code link page screen button
settings profile notification mobile desktop browser app version install download upload export
import data database backup restore migration config token session logout timeout slow fast
network connection offline online sync cache queue worker job task project sprint board card
roadmap design draft document spreadsheet slide contract legal policy privacy security audit
compliance region europe america asia office remote holiday weekend monday tuesday wednesday
thursday friday saturday sunday january february march april may june july august september
october november december`.split(/\s+/).filter(Boolean);

/** Made-up tail words (product names, jargon, typos): consonant-vowel syllables from an index. */
function tailWord(i: number): string {
  const c = 'bcdfghjklmnprstvz';
  const v = 'aeiou';
  let n = i;
  let w = '';
  for (let k = 0; k < 3 || n > 0; k++) {
    w += c[n % c.length]! + v[Math.floor(n / c.length) % v.length]!;
    n = Math.floor(n / (c.length * v.length));
  }
  return w;
}

const VOCABULARY_SIZE = 5000;

function vocabulary(): string[] {
  const words = [...new Set(COMMON)];
  const seen = new Set(words);
  for (let i = 0; words.length < VOCABULARY_SIZE; i++) {
    const w = tailWord(i + 7919);
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

/** Zipf (s = 1) sampler over ranks 0..n-1 by binary search in the cumulative weights. */
function zipf(n: number, rnd: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) cdf[r] = sum += 1 / (r + 1);
  return () => {
    const x = rnd() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function uuid(rnd: () => number): string {
  const h: string[] = [];
  for (let i = 0; i < 4; i++) h.push((Math.floor(rnd() * 0x1_0000_0000) >>> 0).toString(16).padStart(8, '0'));
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-${'89ab'[parseInt(s[16]!, 16) & 3]}${s.slice(17, 20)}-${s.slice(20, 32)}`;
}

const meta = (file: string) => `${file}.json`;

/** The cached dataset when it is complete and of this generator version, else undefined. */
function cached(file: string): Dataset | undefined {
  if (!existsSync(file) || !existsSync(meta(file))) return undefined;
  try {
    const d = JSON.parse(readFileSync(meta(file), 'utf8')) as Dataset;
    if (d.version !== GENERATOR_VERSION || d.messages !== TOTAL_MESSAGES) return undefined;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const n = (db.prepare('select count(*) as n from messages').get() as { n: number }).n;
      return n === TOTAL_MESSAGES ? { ...d, file } : undefined;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

/** Migrates and seeds an empty database by starting Parley once (as `npm start` does), then stops it. */
async function migrateAndSeed(root: string, file: string, log: (l: string) => void): Promise<void> {
  const port = await freePort();
  const dir = dirname(file);
  log(`generate: starting Parley once on ${HOST}:${port} to migrate and seed ${file}`);
  const parley = startService('parley (migrate + seed)', process.execPath, npmStartArgs(root), {
    cwd: root,
    env: {
      ...baseEnv(),
      PORT: String(port),
      HOST,
      DATA_DIR: dir,
      DATABASE_URL: file,
      SEED_DEMO: 'true',
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      METRICS_ENABLED: 'false',
      JWT_SECRET: randomBytes(36).toString('base64url'),
      DOTENV_CONFIG_PATH: join(dir, 'no-such.env'),
    },
  });
  await waitForHttp(parley, `http://${HOST}:${port}/health`);
  await parley.stop();
}

function fill(file: string, log: (l: string) => void): Omit<Dataset, 'file' | 'generatedInSec'> {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144'); // 256 MiB
  try {
    const org = db.prepare("select id from organizations where slug = 'demo'").get() as { id: string } | undefined;
    if (!org) throw new Error('no demo organization: was Parley seeded?');
    const users = db.prepare("select id, username from users where org_id = ? and username in ('admin', 'agent1', 'agent2')").all(org.id) as { id: string; username: string }[];
    const agent1 = users.find((u) => u.username === 'agent1');
    if (!agent1 || users.length !== 3) throw new Error('demo users admin, agent1, agent2 not found');
    const senders = users.map((u) => u.id);

    const rnd = mulberry32(SEED);
    const words = vocabulary();
    const pickWord = zipf(words.length, rnd);
    // Messages span the year before 2026-01-01, one every ~31.5 s, in order.
    const t0 = Date.parse('2025-01-01T00:00:00Z');
    const step = (365 * 24 * 3600 * 1000) / TOTAL_MESSAGES;
    const created = (i: number) => new Date(t0 + Math.floor(i * step)).toISOString();

    const channels = Array.from({ length: CHANNELS }, (_, i) => ({ id: uuid(rnd), name: i === 0 ? 'bench-big' : `bench-${String(i).padStart(3, '0')}`, lastSeq: 0, lastAt: '' }));
    const insertConv = db.prepare(
      "insert into conversations (id, org_id, kind, name, topic, created_by, last_seq, last_message_at, created_at, updated_at) values (?, ?, 'public', ?, ?, ?, 0, null, ?, ?)",
    );
    const insertMember = db.prepare("insert into conversation_members (conversation_id, user_id, org_id, role, last_read_seq, muted, joined_at) values (?, ?, ?, ?, 0, 0, ?)");
    const at0 = created(0);
    db.transaction(() => {
      for (const c of channels) {
        insertConv.run(c.id, org.id, c.name, `Benchmark channel ${c.name}`, agent1.id, at0, at0);
        for (const u of users) insertMember.run(c.id, u.id, org.id, u.id === agent1.id ? 'owner' : 'member', at0);
      }
    })();

    const insertMsg = db.prepare(
      "insert into messages (id, org_id, conversation_id, seq, sender_type, sender_id, type, body, private, created_at, in_channel) values (?, ?, ?, ?, 'user', ?, 'text', ?, 0, ?, 1)",
    );
    const sentence = (): string => {
      const n = 3 + Math.floor(rnd() * 18); // 3..20 words
      const parts: string[] = [];
      for (let k = 0; k < n; k++) parts.push(words[pickWord()]!);
      const s = parts.join(' ');
      return s[0]!.toUpperCase() + s.slice(1) + (rnd() < 0.15 ? '?' : '.');
    };
    const started = Date.now();
    for (let from = 0; from < TOTAL_MESSAGES; from += BATCH) {
      db.transaction(() => {
        for (let i = from; i < Math.min(from + BATCH, TOTAL_MESSAGES); i++) {
          const c = i % BIG_EVERY === 0 ? channels[0]! : channels[1 + Math.floor(rnd() * (CHANNELS - 1))]!;
          const at = created(i);
          const body = rnd() < 0.2 ? `${sentence()} ${sentence()}` : sentence();
          insertMsg.run(uuid(rnd), org.id, c.id, ++c.lastSeq, senders[Math.floor(rnd() * senders.length)]!, body, at);
          c.lastAt = at;
        }
      })();
      const done = Math.min(from + BATCH, TOTAL_MESSAGES);
      if (done % 200_000 === 0) log(`generate: ${done.toLocaleString('en-US')} messages (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    const updateConv = db.prepare('update conversations set last_seq = ?, last_message_at = ?, updated_at = ? where id = ?');
    db.transaction(() => {
      for (const c of channels) updateConv.run(c.lastSeq, c.lastAt, c.lastAt, c.id);
    })();

    // New messages wait above messages_fts_state's mark for Parley's batch indexer: index them all here at once.
    db.exec("insert into messages_fts(messages_fts) values ('rebuild')");
    db.exec('update messages_fts_state set indexed_upto = (select coalesce(max(rowid), 0) from messages)');

    // Words for the search benchmark: the most common word, one of middle rank, one of the tail.
    const count = db.prepare('select count(*) as n from messages_fts where messages_fts match ?');
    const stat = (word: string): WordStat => ({ word, messages: (count.get(`body:"${word}"`) as { n: number }).n });
    const words3 = { common: stat(words[0]!), mid: stat(words[150]!), rare: stat(words[VOCABULARY_SIZE - 1]!) };
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.exec('analyze');
    return { version: GENERATOR_VERSION, messages: TOTAL_MESSAGES, channels: CHANNELS, bigChannel: { id: channels[0]!.id, name: channels[0]!.name, messages: channels[0]!.lastSeq }, words: words3 };
  } finally {
    db.close();
  }
}

/** The path of the benchmark database, generated unless a complete cached copy exists. */
export async function ensureDataset(root: string, log: (l: string) => void): Promise<Dataset> {
  const dir = join(root, 'bench', '.results', 'dataset');
  const file = join(dir, `messages-${TOTAL_MESSAGES}-v${GENERATOR_VERSION}.db`);
  const hit = cached(file);
  if (hit) {
    log(`dataset: reusing ${file} (${hit.messages.toLocaleString('en-US')} messages, generated once in ${hit.generatedInSec.toFixed(0)} s)`);
    return hit;
  }
  mkdirSync(dir, { recursive: true });
  const partial = join(dir, 'building.db');
  for (const f of [file, meta(file), partial, `${partial}-wal`, `${partial}-shm`]) rmSync(f, { force: true });
  const started = Date.now();
  await migrateAndSeed(root, partial, log);
  log(`generate: writing ${TOTAL_MESSAGES.toLocaleString('en-US')} messages in ${CHANNELS} channels`);
  const d = fill(partial, log);
  for (const f of [`${partial}-wal`, `${partial}-shm`]) rmSync(f, { force: true });
  renameSync(partial, file);
  const dataset: Dataset = { ...d, file, generatedInSec: (Date.now() - started) / 1000 };
  writeFileSync(meta(file), `${JSON.stringify(dataset, null, 2)}\n`);
  log(`generate: done in ${dataset.generatedInSec.toFixed(0)} s: ${file}`);
  return dataset;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const { cleanup, installCleanupHandlers } = await import('./proc.ts');
  installCleanupHandlers();
  try {
    const d = await ensureDataset(root, (l) => process.stdout.write(`${l}\n`));
    process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
  } finally {
    await cleanup();
  }
}
