/**
 * The data side of the inbound benchmark (bench/lib/inbound.ts): signed WhatsApp text deliveries
 * written to files for bench/wrk-signed.lua, and what the benchmark reads back from Parley's
 * database (SQLite file or PostgreSQL) to follow and check the processing of what was accepted.
 */
import { createHmac } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import Sqlite from 'better-sqlite3';
import pg from 'pg';

/** The signature header and the database the PostgreSQL runs use. */
export const HEADER = 'X-Hub-Signature-256';
export const PG_DATABASE = 'parley_bench';
/** The bare route stores nothing: one file of this many deliveries, cycled (repeats cost it nothing). */
export const BARE_DELIVERIES = 20_000;

export const SHOWN_ENV =
  `PORT=<free port> HOST=127.0.0.1 DATA_DIR=<temp dir> DATABASE_URL=<temp dir>/bench.db|postgres://postgres@127.0.0.1:<port>/${PG_DATABASE} SEED_DEMO=true ` +
  'NODE_ENV=development LOG_LEVEL=warn METRICS_ENABLED=false JWT_SECRET=<random, 48 chars> RATE_LIMIT_MAX=1000000000 OUTBOX_POLL_MS=50 DOTENV_CONFIG_PATH=<missing file>';

export const WRK_SHOWN = (connections: number, durationSec: number) =>
  `wrk -t1 -c${connections} -d${durationSec}s --latency -s bench/wrk-signed.lua http://127.0.0.1:<port>/webhooks/whatsapp/<inbox id> -- <deliveries file> ${HEADER}`;

/**
 * Seconds of unmeasured load on a target just before each of its measured runs (rounds and the
 * warm-up alike). A server that sat idle for half a minute, as each does while the others are
 * measured and PostgreSQL's backlog drains, has had its young generation shrunk by V8's memory
 * reducer (64 MB → 1 MB, seen with a GC log): the first seconds of load then run at 3–5× the
 * scavenges until it has grown back. The first 10 s after such a pause measured that, not the
 * steady state the benchmark is about; its deliveries are processed (drained) before the run.
 */
export const SETTLE_SEC = 3;

/** Distinct senders the deliveries cycle through. */
export const CONTACTS = 1000;

/**
 * One WhatsApp Cloud API text delivery (the shape of test/fixtures/platforms/whatsapp/text.json),
 * message number `n` of the series `tag`: sender n mod CONTACTS, wamid unique per (tag, n).
 */
export function deliveryBody(tag: string, n: number): string {
  const contact = n % CONTACTS;
  const waId = `1555${String(contact).padStart(7, '0')}`;
  return JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{
      id: '1234567890987654321',
      changes: [{
        field: 'messages',
        value: {
          messaging_product: 'whatsapp',
          metadata: { display_phone_number: '15550001111', phone_number_id: '1122334455667' },
          contacts: [{ profile: { name: `Bench Contact ${contact}` }, wa_id: waId }],
          messages: [{ from: waId, id: `wamid.bench.${tag}.${n}`, timestamp: '1697043223', text: { body: `inbound benchmark message ${n}` }, type: 'text' }],
        },
      }],
    }],
  });
}

/** The X-Hub-Signature-256 value Meta sends: HMAC-SHA256 of the raw body with the app secret. */
export const signature = (body: string, secret: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** Writes deliveries `from` .. `from + count - 1` of series `tag`, signed, one per line: signature TAB body. */
export function writeDeliveries(file: string, tag: string, from: number, count: number, secret: string): void {
  const fd = openSync(file, 'w');
  try {
    let chunk = '';
    for (let n = from; n < from + count; n++) {
      const body = deliveryBody(tag, n);
      chunk += `${signature(body, secret)}\t${body}\n`;
      if (chunk.length > 1 << 20) {
        writeSync(fd, chunk);
        chunk = '';
      }
    }
    writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
}

/** Deliveries received after a mark: how many, the first receipt and the last processing (epoch ms). */
export interface Window {
  events: number;
  firstReceivedMs: number;
  lastProcessedMs: number;
  /** The latest received_at, as the database returned it: the mark of the next window. */
  mark: unknown;
}

/** The inbox's totals in the database. */
export interface Totals {
  /** webhook_events rows (each one a delivery Parley answered 200) and their distinct wamids. */
  events: number;
  distinctIds: number;
  byStatus: Record<string, number>;
  /** messages from contacts in the inbox's conversations, and their distinct external ids. */
  stored: number;
  storedDistinct: number;
  conversations: number;
}

/** Read-only queries on Parley's database about one inbox. */
export interface Probe {
  /** Deliveries not processed yet (status received, or failed and waiting for a retry). */
  pending(): Promise<number>;
  window(after: unknown): Promise<Window>;
  totals(): Promise<Totals>;
  close(): Promise<void>;
}

const ms = (v: unknown): number => (v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : NaN);

// Named parameters $inbox and $after; {ts} is the type of the timestamp columns.
const SQL = {
  pending: `select count(*) as n from webhook_events where inbox_id = $inbox and status in ('received', 'failed')`,
  window: `select count(*) as n, min(received_at) as first, max(processed_at) as last, max(received_at) as mark from webhook_events where inbox_id = $inbox and (cast($after as {ts}) is null or received_at > cast($after as {ts}))`,
  events: `select count(*) as n, count(distinct {id}) as d from webhook_events where inbox_id = $inbox`,
  status: `select status, count(*) as n from webhook_events where inbox_id = $inbox group by status`,
  stored: `select count(*) as n, count(distinct m.external_id) as d, count(distinct m.conversation_id) as c from messages m join conversations c on c.id = m.conversation_id where c.inbox_id = $inbox and m.sender_type = 'contact'`,
};

type Row = Record<string, unknown>;
type Query = (sql: string, params: { inbox: string; after?: unknown }) => Promise<Row[]>;

function probeOver(query: Query, inboxId: string, close: () => Promise<void>): Probe {
  const one = async (sql: string, after?: unknown) => (await query(sql, after === undefined ? { inbox: inboxId } : { inbox: inboxId, after }))[0]!;
  return {
    pending: async () => Number((await one(SQL.pending)).n),
    async window(after) {
      const r = await one(SQL.window, after ?? null);
      return { events: Number(r.n), firstReceivedMs: ms(r.first), lastProcessedMs: ms(r.last), mark: r.mark ?? after };
    },
    async totals() {
      const [e, s, st] = [await one(SQL.events), await one(SQL.stored), await query(SQL.status, { inbox: inboxId })];
      return {
        events: Number(e.n),
        distinctIds: Number(e.d),
        byStatus: Object.fromEntries(st.map((x) => [String(x.status), Number(x.n)])),
        stored: Number(s.n),
        storedDistinct: Number(s.d),
        conversations: Number(s.c),
      };
    },
    close,
  };
}

/** A probe on a SQLite file (read-only connection; WAL lets it read while Parley writes). */
export function sqliteProbe(file: string, inboxId: string): Probe {
  const db = new Sqlite(file, { readonly: true, fileMustExist: true });
  const prepared = new Map<string, Sqlite.Statement>();
  const text = (sql: string) => sql.replaceAll('{ts}', 'text').replaceAll('{id}', `json_extract(body, '$.entry[0].changes[0].value.messages[0].id')`);
  const query: Query = async (sql, params) => {
    let st = prepared.get(sql);
    if (!st) prepared.set(sql, (st = db.prepare(text(sql))));
    return st.all(params) as Row[];
  };
  return probeOver(query, inboxId, async () => void db.close());
}

/** A probe on a PostgreSQL database (one client connection). */
export async function pgProbe(url: string, inboxId: string): Promise<Probe> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // the server stopping under an idle client (cleanup after a failure) must not crash the run
  await client.connect();
  // received_at is timestamptz there: the mark goes back as the Date pg returned.
  const text = (sql: string) =>
    sql.replaceAll('{ts}', 'timestamptz').replaceAll('{id}', `(body::jsonb #>> '{entry,0,changes,0,value,messages,0,id}')`).replaceAll('$inbox', '$1').replaceAll('$after', '$2');
  const query: Query = async (sql, params) => (await client.query(text(sql), 'after' in params ? [params.inbox, params.after] : [params.inbox])).rows as Row[];
  return probeOver(query, inboxId, () => client.end());
}
