import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { waitForExit } from '../../../test/helpers/process.ts';
import { findRedisServerBin, startRedisServer, type RedisServer } from '../../../test/helpers/redis-server.ts';

// A REAL NestJS microservice (Transport.REDIS, @EventPattern handlers) in its own process hears
// the integration events that IntegrationEvents.record wrote in a transaction and the dispatcher
// published: the wire format of CONNECTORS.md §7, end to end. Each suite has its own redis-server
// (channels are global to a server), which one test stops and restarts.

const CONSUMER = fileURLToPath(new URL('../../../test/fixtures/nest-consumer.mjs', import.meta.url));
const EVENTS = ['chat.conversation.new', 'chat.message.new', 'chat.conversation.assigned', 'chat.conversation.status_changed'];

interface Heard {
  handler: string;
  channel: string;
  data: Record<string, unknown> & { event_id: string };
}

/** Start the Nest consumer and resolve once it has subscribed. */
async function startConsumer(port: number) {
  const heard: Heard[] = [];
  let stderr = '';
  const child: ChildProcess = spawn(process.execPath, [CONSUMER, String(port), ...EVENTS], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
  let buf = '';
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      if (line.ready) ready();
      else heard.push(line as Heard);
    }
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`nest consumer exited (${code}):\n${stderr}`))));
  await Promise.race([isReady, exited, new Promise((_, reject) => setTimeout(() => reject(new Error(`nest consumer not ready:\n${stderr}`)), 30_000).unref())]);
  exited.catch(() => undefined);
  return {
    heard,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      if (!(await waitForExit(child, 5000))) child.kill('SIGKILL');
    },
  };
}

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const skip = findRedisServerBin() === undefined ? 'redis-server is not installed' : false;

for (const dialect of testDialects()) {
  describe(`integration events to a NestJS Transport.REDIS consumer (${dialect})`, { skip }, () => {
    let redis: RedisServer;
    let t: TestApp;
    let admin: TestUser;
    let consumer: Awaited<ReturnType<typeof startConsumer>>;
    before(async () => {
      redis = await startRedisServer();
      t = await newTestApp({
        dialect,
        redis: redis.url,
        env: {
          REDIS_URL: redis.url,
          OUTBOX_POLL_MS: '50',
          OUTBOX_RETRY_BASE_MS: '50',
          OUTBOX_RETRY_MAX_MS: '400',
          // Pub/Sub drops what nobody hears: while the consumer is reconnecting, keep retrying.
          INTEGRATION_REDIS_MIN_SUBSCRIBERS: '1',
        },
      });
      // The outage below makes the app's connection report errors (main.ts logs them).
      t.redis!.on('error', () => undefined);
      admin = await makeUser(t.app, t.services, (await makeOrg(t.services)).id, 'admin');
      consumer = await startConsumer(redis.port);
    });
    after(async () => {
      await consumer?.stop();
      await t?.close();
      await redis?.stop();
    });

    /** Record events in one transaction, as a producer does, then kick the dispatcher. */
    const produce = async (events: Array<[string, Record<string, unknown>]>) => {
      const ids = await t.db.db.transaction().execute(async (trx) => {
        const out: string[] = [];
        for (const [name, data] of events) out.push(await t.services.integrations.record(trx, admin.orgId, name, data));
        return out;
      });
      t.services.integrations.kick();
      return ids;
    };

    it('@EventPattern handlers receive chat.conversation.new, chat.message.new, chat.conversation.assigned and chat.conversation.status_changed, data unchanged', async () => {
      const conversation = { id: 'c-1', kind: 'support', status: 'open', inbox_id: 'i-1', contact_id: 'k-1' };
      const events: Array<[string, Record<string, unknown>]> = [
        ['chat.conversation.new', { conversation }],
        ['chat.message.new', { conversation_id: 'c-1', message: { id: 'm-1', seq: 1, body: 'Olá 👋', type: 'text' } }],
        ['chat.conversation.assigned', { conversation_id: 'c-1', assignee_id: 'u-1', team_id: null, previous_assignee_id: null }],
        ['chat.conversation.status_changed', { conversation_id: 'c-1', status: 'resolved', previous_status: 'open' }],
      ];
      const ids = await produce(events);
      const got = await until('four events', () => (ids.every((id) => consumer.heard.some((h) => h.data.event_id === id)) ? consumer.heard : false));
      for (const [i, [name, data]] of events.entries()) {
        const h = got.find((x) => x.data.event_id === ids[i])!;
        assert.equal(h.handler, name, 'the handler of its pattern');
        assert.equal(h.channel, name);
        assert.deepEqual(h.data, { event_id: ids[i], event: name, occurred_at: h.data.occurred_at, org_id: admin.orgId, ...data });
        assert.ok(!Number.isNaN(Date.parse(String(h.data.occurred_at))), 'occurred_at is a date');
      }
      // The outbox shows them delivered (written just after the publish), heard by one subscriber.
      const rows = await until('rows marked done', async () => {
        const list = await call(t.app, 'GET', '/api/v1/outbox?target=redis&status=done', { token: admin.token });
        const mine = list.data.data.filter((d: { event_id: string }) => ids.includes(d.event_id));
        return mine.length === ids.length ? (mine as Array<{ response_status: number }>) : false;
      });
      assert.deepEqual(rows.map((r) => r.response_status), [1, 1, 1, 1]);
      const metrics = await t.app.metrics.registry.metrics();
      assert.match(metrics, /chat_outbox_deliveries_total\{target="redis",outcome="delivered"\} [4-9]/);
    });

    it('Redis stopped during activity: nothing is lost, every event arrives once Redis is back, each event_id once', async () => {
      const before = consumer.heard.length;
      const early = await produce([['chat.message.new', { conversation_id: 'c-2', message: { id: 'm-a' } }]]);
      await until('the event before the outage', () => consumer.heard.some((h) => h.data.event_id === early[0]));

      await redis.stop();
      const during: string[] = [];
      for (let i = 0; i < 6; i++) {
        during.push(...(await produce([
          ['chat.message.new', { conversation_id: 'c-2', message: { id: `m-${i}` } }],
          ['chat.conversation.status_changed', { conversation_id: 'c-2', status: i % 2 ? 'open' : 'pending', previous_status: 'open' }],
        ])));
      }
      // While Redis is down the attempts fail and the rows wait.
      await until('failed attempts while down', async () => {
        const r = await call(t.app, 'GET', '/api/v1/outbox?target=redis&status=pending&limit=200', { token: admin.token });
        return r.data.data.some((d: { last_error: string | null }) => d.last_error?.startsWith('redis: '));
      });
      const pending = await call(t.app, 'GET', '/api/v1/outbox?target=redis&status=pending&limit=200', { token: admin.token });
      assert.equal(pending.data.data.length, during.length, 'every event is waiting');
      assert.ok(!consumer.heard.slice(before).some((h) => during.includes(h.data.event_id)), 'nothing arrived while Redis was down');

      redis = await startRedisServer({ port: redis.port });
      await until('every event after the restart', () => during.every((id) => consumer.heard.some((h) => h.data.event_id === id)), 30_000);
      await new Promise((r) => setTimeout(r, 300)); // a late duplicate would show up now
      const counts = new Map<string, number>();
      for (const h of consumer.heard) counts.set(h.data.event_id, (counts.get(h.data.event_id) ?? 0) + 1);
      assert.deepEqual([...early, ...during].filter((id) => counts.get(id) !== 1), [], 'each event_id once');
      const left = await call(t.app, 'GET', '/api/v1/outbox?target=redis&status=pending', { token: admin.token });
      assert.equal(left.data.data.length, 0);
    });
  });
}
