import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { runMigrations } from '../../bootstrap.ts';
import { systemClock } from '../../platform/clock.ts';
import { newId } from '../../platform/ids.ts';
import { createDb, type Database } from '../../storage/db.ts';
import type { DialectName } from '../../storage/dialect.ts';
import { newTestDb, testDialects, type TestDb } from '../../../test/helpers/new-test-db.ts';
import { OutboxDispatcher, type DeliveryResult, type DispatcherOptions } from './dispatcher.ts';
import { IntegrationEvents } from './events.ts';
import { createOutboxMetrics } from './integrations.metrics.ts';
import { OutboxRepo, type OutboxRow } from './outbox.repo.ts';
import { WebhooksRepo } from './webhooks.repo.ts';

const silent = { info: () => undefined };
const FAST: DispatcherOptions = { pollMs: 20, concurrency: 8, maxAttempts: 5, retryBaseMs: 10, retryMaxMs: 40, lockMs: 30_000 };
const now = () => new Date().toISOString();

async function insertOrg(d: Database): Promise<string> {
  const id = newId();
  await d.db.insertInto('organizations').values({ id, name: id, slug: `o${id.slice(0, 8)}`, registration_open: 1, default_role: 'member', settings: '{}', created_at: now(), updated_at: now() }).execute();
  return id;
}

async function insertEndpoint(d: Database, orgId: string, events: string[], active = true): Promise<string> {
  const id = newId();
  await d.db.insertInto('webhook_endpoints').values({ id, org_id: orgId, url: 'http://127.0.0.1:9/', secret_enc: 'x', events: JSON.stringify(events), active: active ? 1 : 0, created_at: now(), updated_at: now() }).execute();
  return id;
}

/** Wait until `check` holds (polling), or fail after `ms`. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

const rowsOf = (d: Database, eventId?: string) => {
  let q = d.db.selectFrom('outbox').selectAll();
  if (eventId) q = q.where('event_id', '=', eventId);
  return q.orderBy('idempotency_key').execute();
};

function newDispatcher(d: Database, opts: Partial<DispatcherOptions> = {}, registry = new Registry()) {
  const repo = new OutboxRepo(d.db);
  const errors: unknown[] = [];
  const metrics = createOutboxMetrics(registry, () => repo.pendingStats(), () => Date.now());
  return { dispatcher: new OutboxDispatcher(repo, { ...FAST, ...opts }, systemClock, metrics, (e) => errors.push(e)), repo, errors, registry };
}

for (const dialect of testDialects()) {
  describe(`outbox (${dialect})`, () => {
    let d: TestDb;
    let orgId: string;
    let events: IntegrationEvents;
    before(async () => {
      d = await newTestDb(dialect);
      orgId = await insertOrg(d);
      events = new IntegrationEvents(new OutboxRepo(d.db), new WebhooksRepo(d.db), systemClock, { redis: true });
    });
    after(() => d.drop());

    it('record writes one row per target in the caller’s transaction: redis and each matching active endpoint', async () => {
      const all = await insertEndpoint(d, orgId, ['*']);
      const exact = await insertEndpoint(d, orgId, ['chat.message.new']);
      const prefix = await insertEndpoint(d, orgId, ['chat.message.*']);
      await insertEndpoint(d, orgId, ['chat.conversation.new']);
      await insertEndpoint(d, orgId, ['*'], false);
      const otherOrg = await insertOrg(d);
      await insertEndpoint(d, otherOrg, ['*']);

      const id = await d.db.transaction().execute((trx) => events.record(trx, orgId, 'chat.message.new', { conversation_id: 'c1', message: { id: 'm1', body: 'hi' }, event_id: 'spoofed' }));
      const rows = await rowsOf(d, id);
      assert.deepEqual(rows.map((r) => r.idempotency_key).sort(), [`${id}:redis`, ...[all, exact, prefix].map((e) => `${id}:webhook:${e}`)].sort());
      for (const r of rows) {
        assert.equal(r.status, 'pending');
        assert.equal(r.org_id, orgId);
        assert.equal(r.event_name, 'chat.message.new');
        const p = JSON.parse(r.payload);
        assert.deepEqual(Object.keys(p).slice(0, 4), ['event_id', 'event', 'occurred_at', 'org_id']);
        assert.deepEqual(p, { event_id: id, event: 'chat.message.new', occurred_at: p.occurred_at, org_id: orgId, conversation_id: 'c1', message: { id: 'm1', body: 'hi' } });
      }
      assert.equal(new Set(rows.map((r) => r.payload)).size, 1, 'every target gets the same event');
    });

    it('a rolled-back transaction leaves no row; the same event id is enqueued once', async () => {
      const eventId = newId();
      await assert.rejects(
        d.db.transaction().execute(async (trx) => {
          await events.record(trx, orgId, 'chat.contact.new', { contact: { id: 'x' } }, { eventId });
          throw new Error('producer failed');
        }),
        /producer failed/,
      );
      assert.equal((await rowsOf(d, eventId)).length, 0);
      for (let i = 0; i < 2; i++) await d.db.transaction().execute((trx) => events.record(trx, orgId, 'chat.contact.new', { contact: { id: 'x' } }, { eventId }));
      assert.equal((await rowsOf(d, eventId)).filter((r) => r.target === 'redis').length, 1);
      await assert.rejects(d.db.transaction().execute((trx) => events.record(trx, orgId, 'Bad Name', {})), /invalid integration event name/);
    });

    it('delivers through the registered handler, retries with backoff until it works, and counts it', async () => {
      const { dispatcher, registry } = newDispatcher(d);
      const seen: Array<{ id: string; at: number; attempts: number }> = [];
      dispatcher.register('flaky', {
        async deliver(row): Promise<DeliveryResult> {
          seen.push({ id: row.id, at: Date.now(), attempts: row.attempts });
          return row.attempts < 3 ? { ok: false, responseStatus: 503, error: `HTTP 503 (attempt ${row.attempts})` } : { ok: true, responseStatus: 200 };
        },
      });
      const eventId = newId();
      await d.db.transaction().execute((trx) => events.enqueue(trx, [{ orgId, target: 'flaky', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:flaky` }]));
      dispatcher.start();
      try {
        await until('delivered', async () => (await rowsOf(d, eventId))[0]?.status === 'done');
      } finally {
        await dispatcher.stop();
      }
      const [row] = await rowsOf(d, eventId);
      assert.equal(row!.attempts, 3);
      assert.equal(row!.response_status, 200);
      assert.equal(row!.last_error, null);
      assert.ok(row!.delivered_at, 'delivered_at');
      assert.equal(row!.locked_until, null);
      assert.deepEqual(seen.map((s) => s.attempts), [1, 2, 3]);
      // Backoff: at least half of base × 2^(n-1) between attempts.
      assert.ok(seen[1]!.at - seen[0]!.at >= 5 && seen[2]!.at - seen[1]!.at >= 10, JSON.stringify(seen));
      const text = await registry.metrics();
      assert.match(text, /chat_outbox_deliveries_total\{target="flaky",outcome="retry"\} 2/);
      assert.match(text, /chat_outbox_deliveries_total\{target="flaky",outcome="delivered"\} 1/);
    });

    it('gives up after maxAttempts (failed, error kept), at once when permanent; a target without a handler fails like any other', async () => {
      const { dispatcher, registry } = newDispatcher(d, { maxAttempts: 3 });
      dispatcher.register('down', { deliver: async () => ({ ok: false, error: 'connect ECONNREFUSED' }) });
      dispatcher.register('gone', { deliver: async () => ({ ok: false, permanent: true, error: 'the webhook endpoint was deleted' }) });
      dispatcher.register('throws', {
        deliver: async () => {
          throw new Error('boom');
        },
      });
      const ids = { down: newId(), gone: newId(), throws: newId(), nobody: newId() };
      await d.db.transaction().execute((trx) =>
        events.enqueue(trx, Object.entries(ids).map(([target, eventId]) => ({ orgId, target, eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:${target}` }))),
      );
      const before = await registry.metrics();
      assert.match(before, /chat_outbox_depth ([4-9]|\d\d+)\n/, 'pending rows are counted before delivery');
      assert.match(before, /chat_outbox_oldest_age_seconds \d/);
      dispatcher.start();
      try {
        await until('given up', async () => (await Promise.all(Object.values(ids).map((e) => rowsOf(d, e)))).every(([r]) => r?.status === 'failed'));
      } finally {
        await dispatcher.stop();
      }
      const [down] = await rowsOf(d, ids.down);
      assert.equal(down!.attempts, 3);
      assert.equal(down!.last_error, 'connect ECONNREFUSED');
      const [gone] = await rowsOf(d, ids.gone);
      assert.equal(gone!.attempts, 1);
      assert.equal((await rowsOf(d, ids.throws))[0]!.last_error, 'boom');
      const [nobody] = await rowsOf(d, ids.nobody);
      assert.match(nobody!.last_error ?? '', /no handler for target "nobody"/);
      await new Promise((r) => setTimeout(r, 550)); // past the gauges' shared read
      const text = await registry.metrics();
      assert.match(text, /chat_outbox_deliveries_total\{target="down",outcome="failed"\} 1/);
      assert.match(text, /chat_outbox_deliveries_total\{target="unknown",outcome="failed"\}/, 'targets without a handler share one label');
      assert.match(text, /chat_outbox_depth 0\n/);
      assert.match(text, /chat_outbox_oldest_age_seconds 0\n/);
    });

    it('rows written without a kick() still leave soon after the commit (no wait for the next poll)', async () => {
      const { dispatcher } = newDispatcher(d, { pollMs: 60_000 });
      const delivered: number[] = [];
      dispatcher.register('soon', { deliver: async () => (delivered.push(Date.now()), { ok: true }) });
      const producer = new IntegrationEvents(new OutboxRepo(d.db), new WebhooksRepo(d.db), systemClock, { redis: false }, { kick: () => dispatcher.kick(), soon: () => dispatcher.soon() });
      dispatcher.start();
      try {
        await new Promise((r) => setTimeout(r, 50)); // the dispatcher is asleep for a minute now
        const t0 = Date.now();
        const eventId = newId();
        await d.db.transaction().execute(async (trx) => {
          await producer.enqueue(trx, [{ orgId, target: 'soon', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:soon` }]);
          await new Promise((r) => setTimeout(r, 60)); // the commit comes a while later
        });
        await until('delivered', () => delivered.length === 1, 3000);
        assert.ok(delivered[0]! - t0 < 1000, `${delivered[0]! - t0} ms`);
      } finally {
        await dispatcher.stop();
      }
    });

    it('with a backlog and attempts finishing one by one, claims take several rows at a time (not one claim per finished row)', async () => {
      const { dispatcher, repo } = newDispatcher(d, { concurrency: 8 });
      let claims = 0;
      const claim = repo.claim.bind(repo);
      repo.claim = async (...args) => {
        claims += 1;
        return claim(...args);
      };
      const delivered: string[] = [];
      // Attempts end one per event-loop turn, like inbound processing (TurnGate).
      dispatcher.register('batch', { deliver: async (row) => (await new Promise((r) => setImmediate(r)), delivered.push(row.event_id), { ok: true }) });
      const ids = Array.from({ length: 200 }, () => newId());
      await d.db.transaction().execute((trx) => events.enqueue(trx, ids.map((eventId) => ({ orgId, target: 'batch', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:batch` }))));
      dispatcher.start();
      try {
        await until('all delivered', () => delivered.length === 200);
        assert.deepEqual([...delivered].sort(), [...ids].sort());
        assert.ok(claims <= 200 / 4 + 10, `${claims} claims for 200 rows`);
      } finally {
        await dispatcher.stop();
      }
    });

    it('with every slot taken, a backlog is not forgotten: rows still due are claimed as attempts end, not at the next poll', async () => {
      // A poll a minute away: only the dispatcher's own knowledge that more rows are due keeps it going.
      const { dispatcher, repo } = newDispatcher(d, { concurrency: 4, pollMs: 60_000 });
      const claim = repo.claim.bind(repo);
      const delivered: string[] = [];
      // A producer commits (and kicks) while a claim runs, as webhook acks do all the time (until
      // the end: a kick at every claim would have the dispatcher claim forever).
      repo.claim = async (...args) => {
        if (delivered.length < 40) dispatcher.kick();
        return claim(...args);
      };
      dispatcher.register('full', { deliver: async (row) => (await new Promise((r) => setTimeout(r, 5)), delivered.push(row.event_id), { ok: true }) });
      const ids = Array.from({ length: 40 }, () => newId());
      await d.db.transaction().execute((trx) => events.enqueue(trx, ids.map((eventId) => ({ orgId, target: 'full', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:full` }))));
      dispatcher.start();
      try {
        await until('all delivered without waiting for a poll', () => delivered.length === 40, 5000);
        assert.deepEqual([...delivered].sort(), [...ids].sort());
      } finally {
        await dispatcher.stop();
      }
    });

    it('a lease that ran out is fenced: the late result is dropped, the new claimer owns the row', async () => {
      const repo = new OutboxRepo(d.db);
      const eventId = newId();
      await d.db.transaction().execute((trx) => events.enqueue(trx, [{ orgId, target: 'lease', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:lease` }]));
      const t0 = Date.now() + 60_000; // in the future: nothing else is due then but our rows
      const iso = (ms: number) => new Date(ms).toISOString();
      const first = (await repo.claim(iso(t0), iso(t0 + 1000), 1000)).find((r) => r.event_id === eventId);
      assert.ok(first, 'claimed');
      assert.equal((await repo.claim(iso(t0 + 500), iso(t0 + 1500), 1000)).some((r) => r.event_id === eventId), false, 'leased rows are not claimed');
      const second = (await repo.claim(iso(t0 + 2000), iso(t0 + 3000), 1000)).find((r) => r.event_id === eventId);
      assert.ok(second, 'claimable again once the lease ran out');
      assert.equal(second.attempts, 2);
      assert.equal(await repo.complete(first.id, first.locked_until!, { outcome: 'delivered', at: iso(t0), responseStatus: 200 }), false);
      assert.equal(await repo.complete(second.id, second.locked_until!, { outcome: 'delivered', at: iso(t0), responseStatus: 200 }), true);
      assert.equal((await rowsOf(d, eventId))[0]!.status, 'done');
    });
  });

  describe(`outbox claims with two dispatchers on one database (${dialect})`, () => {
    let a: Database;
    let b: Database;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ a, b, cleanup } = await twoHandles(dialect));
    });
    after(() => cleanup());

    it('every row is delivered exactly once, never by both at the same time', async () => {
      const orgId = await insertOrg(a);
      const producer = new IntegrationEvents(new OutboxRepo(a.db), new WebhooksRepo(a.db), systemClock, { redis: false });
      const N = 400;
      const inflight = new Set<string>();
      const delivered = new Map<string, string[]>();
      let overlaps = 0;
      const handler = (who: string) => ({
        async deliver(row: OutboxRow): Promise<DeliveryResult> {
          if (inflight.has(row.id)) overlaps++;
          inflight.add(row.id);
          await new Promise((r) => setTimeout(r, (row.id.charCodeAt(0) % 4) + 1));
          inflight.delete(row.id);
          delivered.set(row.id, [...(delivered.get(row.id) ?? []), who]);
          return { ok: true };
        },
      });
      const one = newDispatcher(a, { concurrency: 16, pollMs: 5 });
      const two = newDispatcher(b, { concurrency: 16, pollMs: 5 });
      one.dispatcher.register('race', handler('a'));
      two.dispatcher.register('race', handler('b'));
      one.dispatcher.start();
      two.dispatcher.start();
      try {
        // Produced while both run, in small transactions, like real traffic.
        for (let i = 0; i < N; i += 20) {
          await a.db.transaction().execute((trx) =>
            producer.enqueue(trx, Array.from({ length: 20 }, () => {
              const eventId = newId();
              return { orgId, target: 'race', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:race` };
            })),
          );
          (i % 40 === 0 ? one : two).dispatcher.kick();
        }
        await until('all delivered', () => delivered.size === N, 30_000);
      } finally {
        await Promise.all([one.dispatcher.stop(), two.dispatcher.stop()]);
      }
      assert.equal(overlaps, 0);
      assert.deepEqual([...delivered.values()].filter((by) => by.length !== 1), [], 'each row delivered once');
      const byWho = [...delivered.values()].flat();
      assert.ok(byWho.includes('a') && byWho.includes('b'), 'both dispatchers took part');
      const left = await a.db.selectFrom('outbox').select('status').where('org_id', '=', orgId).where('status', '!=', 'done').execute();
      assert.equal(left.length, 0);
      assert.deepEqual([...one.errors, ...two.errors], []);
    });

    it('concurrent claims take disjoint rows', async () => {
      const orgId = await insertOrg(a);
      const producer = new IntegrationEvents(new OutboxRepo(a.db), new WebhooksRepo(a.db), systemClock, { redis: false });
      await a.db.transaction().execute((trx) =>
        producer.enqueue(trx, Array.from({ length: 120 }, () => {
          const eventId = newId();
          return { orgId, target: 'disjoint', eventName: 'chat.test', eventId, payload: '{}', idempotencyKey: `${eventId}:disjoint` };
        })),
      );
      const ra = new OutboxRepo(a.db);
      const rb = new OutboxRepo(b.db);
      const t = Date.now() + 120_000;
      const iso = (ms: number) => new Date(ms).toISOString();
      const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? ra : rb).claim(iso(t), iso(t + 60_000), 15)));
      const ids = claims.flat().filter((r) => r.org_id === orgId).map((r) => r.id);
      assert.equal(ids.length, 120);
      assert.equal(new Set(ids).size, 120);
    });
  });
}

/** Two independent handles (pools / connections) on one database. */
async function twoHandles(dialect: DialectName): Promise<{ a: Database; b: Database; cleanup: () => Promise<void> }> {
  if (dialect === 'postgres') {
    const a = await newTestDb('postgres');
    const b = createDb(a.url);
    return { a, b, cleanup: async () => (await b.close(), await a.drop()) };
  }
  const dir = await mkdtemp(join(tmpdir(), 'parley-outbox-'));
  const file = join(dir, 'two.db');
  const a = createDb(file, { checkpointIntervalMs: 0 });
  await runMigrations(a.db, silent);
  const b = createDb(file, { checkpointIntervalMs: 0 });
  return { a, b, cleanup: async () => (await b.close(), await a.close(), await rm(dir, { recursive: true, force: true })) };
}
