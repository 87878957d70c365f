import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { call, newTestApp, type TestApp } from '../../../test/helpers/new-test-app.ts';
import { testDialects } from '../../../test/helpers/new-test-db.ts';
import { makeOrg, makeUser, type TestUser } from '../../../test/helpers/factories.ts';
import { TestSocket, type Frame } from '../../../test/helpers/ws-client.ts';

async function listening(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

for (const dialect of testDialects()) {
  describe(`realtime gateway (${dialect})`, () => {
    let t: TestApp;
    let base: string;
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    const sockets: TestSocket[] = [];
    before(async () => {
      t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', WS_TYPING_THROTTLE_MS: '1000', WS_HEARTBEAT_MS: '60000', WS_RESUME_LIMIT: '20', WS_ALLOWED_ORIGINS: 'https://app.example' } });
      base = await listening(t);
      const org = await makeOrg(t.services);
      alice = await makeUser(t.app, t.services, org.id, 'member');
      bob = await makeUser(t.app, t.services, org.id, 'member');
      carol = await makeUser(t.app, t.services, org.id, 'member');
    });
    after(async () => {
      for (const s of sockets) s.ws.terminate();
      await t.close();
    });
    const connect = async (who: TestUser) => {
      const s = await TestSocket.connect(base, who.token);
      sockets.push(s);
      return s;
    };
    let n = 0;
    const channel = async (members: TestUser[], priv = true) => {
      const r = await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: `rt-${dialect}-${++n}`, private: priv, members: members.map((m) => m.id) } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data.id as string;
    };
    const send = async (id: string, body: string, who: TestUser = alice) => {
      const r = await call(t.app, 'POST', `/api/v1/channels/${id}/messages`, { token: who.token, body: { body } });
      assert.equal(r.statusCode, 201, r.body);
      return r.data as { id: string; seq: number };
    };
    const ok = async (method: string, url: string, body?: Record<string, unknown>, who: TestUser = alice) => {
      const r = await call(t.app, method, url, { token: who.token, body });
      assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
      return r.data;
    };

    it('refuses the handshake without a valid token (4401) and from a foreign origin (4403)', async () => {
      const ws = base.replace(/^http/, 'ws');
      assert.equal((await (await TestSocket.open(`${ws}/ws`)).closed).code, 4401);
      assert.equal((await (await TestSocket.open(`${ws}/ws?token=not-a-token`)).closed).code, 4401);
      const foreign = await TestSocket.open(`${ws}/ws?token=${alice.token}`, { headers: { origin: 'https://evil.example' } });
      assert.equal((await foreign.closed).code, 4403);
      // The Authorization header works as well as ?token=, and an allowed origin is served.
      const s = await TestSocket.open(`${ws}/ws`, { headers: { authorization: `Bearer ${alice.token}`, origin: 'https://app.example' } });
      sockets.push(s);
      const hello = await s.next((f) => f.type === 'hello');
      assert.deepEqual(Object.keys(hello), ['type', 'payload', 'timestamp']);
      assert.deepEqual(Object.keys(hello.payload), ['connection_id', 'user_id', 'heartbeat_ms']);
      assert.equal(hello.payload.user_id, alice.id);
      assert.equal(hello.payload.heartbeat_ms, 60_000);
      assert.match(hello.payload.connection_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(Math.abs(Date.parse(hello.timestamp) - Date.now()) < 60_000, hello.timestamp);
      // A malformed message gets an error naming what is wrong, with the request id.
      s.send({ type: 'subscribe', id: 'x1', channel_id: 'nope' });
      const err = await s.next((f) => f.type === 'error');
      assert.equal(err.id, 'x1');
      assert.equal(err.payload.code, 'validation.failed');
    });

    it('a request sent the moment the socket opens is answered (connect limit on; credentials checked, then remembered)', async () => {
      const org = await makeOrg(t.services);
      const dave = await makeUser(t.app, t.services, org.id, 'member');
      for (const round of ['checked', 'remembered']) {
        const s = await requestAtOpen(base, dave.token);
        sockets.push(s.socket);
        assert.equal(s.pong.id, 'at-open', round);
        assert.equal(s.socket.frames[0]!.type, 'hello', `${round}: hello comes first`);
      }
    });

    it('a private channel is invisible to a non-member: subscribing answers like a missing one', async () => {
      const id = await channel([bob]);
      const s = await connect(carol);
      await assert.rejects(s.request({ type: 'subscribe', channel_id: id }), (e: { code?: string }) => e.code === 'conversation.not_found');
      const b = await connect(bob);
      const ack = await b.request({ type: 'subscribe', channel_id: id });
      assert.equal(ack.payload.channel_id, id);
    });

    it('every change reaches subscribers, with a gapless event seq: message, edit, reaction, pin, delete', async () => {
      const id = await channel([bob]);
      const b = await connect(bob);
      const start = (await b.request({ type: 'subscribe', channel_id: id })).payload.seq as number;
      const m = await send(id, 'hello bob');
      const got = await b.next((f) => f.type === 'message');
      assert.equal(got.payload.id, m.id);
      assert.equal(got.channel_id, id);
      await ok('PUT', `/api/v1/messages/${m.id}`, { body: 'hello, bob' });
      assert.equal((await b.next((f) => f.type === 'message_update')).payload.body, 'hello, bob');
      await ok('POST', `/api/v1/messages/${m.id}/reactions`, { emoji: '👍' });
      const r = await b.next((f) => f.type === 'reaction');
      assert.deepEqual([r.payload.emoji, r.payload.user_id, r.payload.action, r.payload.count], ['👍', alice.id, 'added', 1]);
      await ok('POST', `/api/v1/messages/${m.id}/pin`);
      assert.equal((await b.next((f) => f.type === 'pin')).payload.pinned, true);
      await ok('DELETE', `/api/v1/messages/${m.id}`);
      assert.equal((await b.next((f) => f.type === 'message_delete')).payload.id, m.id);
      const seqs = b.frames.filter((f) => f.channel_id === id && f.seq !== undefined).map((f) => f.seq!);
      assert.deepEqual(seqs, [start + 1, start + 2, start + 3, start + 4, start + 5], 'one event per change, consecutive');
    });

    it('a removed member stops receiving at once; a revoked session is closed with 4401', async () => {
      const id = await channel([bob]);
      const b = await connect(bob);
      await b.request({ type: 'subscribe', channel_id: id });
      await send(id, 'before');
      await b.next((f) => f.type === 'message');
      await ok('DELETE', `/api/v1/channels/${id}/members/${bob.id}`);
      const gone = await b.next((f) => f.type === 'membership');
      assert.equal(gone.payload.action, 'removed');
      await send(id, 'after removal');
      assert.deepEqual(await b.collect(300, (f) => f.type === 'message'), [], 'nothing more after removal');

      const session = await call(t.app, 'POST', '/api/v1/auth/login', { body: { username: carol.username, password: 'correct horse battery' } });
      assert.equal(session.statusCode, 200, session.body);
      const c = await TestSocket.connect(base, session.data.token);
      sockets.push(c);
      assert.equal((await call(t.app, 'POST', '/api/v1/auth/logout', { token: session.data.token, body: {} })).statusCode < 300, true);
      assert.equal((await c.closed).code, 4401);
    });

    it('resume: since_seq replays messages, edits, deletes and reactions made while away, then goes live with no gap and no duplicate', async () => {
      const id = await channel([bob]);
      const kept = await send(id, 'kept');
      const edited = await send(id, 'to edit');
      const removed = await send(id, 'to delete');
      let b = await connect(bob);
      const since = (await b.request({ type: 'subscribe', channel_id: id })).payload.seq as number;
      await b.close();
      // While bob is away.
      const fresh = await send(id, 'while away');
      await ok('PUT', `/api/v1/messages/${edited.id}`, { body: 'edited while away' });
      await ok('DELETE', `/api/v1/messages/${removed.id}`);
      await ok('POST', `/api/v1/messages/${kept.id}/reactions`, { emoji: '🎉' }, carol === bob ? alice : alice);
      b = await connect(bob);
      // A message posted during the resume itself must come exactly once.
      const racing = send(id, 'during resume');
      const ack = await b.request({ type: 'subscribe', channel_id: id, since_seq: since });
      await racing;
      const live = await send(id, 'after resume');
      await b.next((f) => f.type === 'message' && f.payload.id === live.id);
      const frames = b.frames.filter((f) => f.channel_id === id && f.seq !== undefined);
      const seqs = frames.map((f) => f.seq!);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in seq order');
      assert.equal(new Set(seqs).size, seqs.length, 'no duplicate');
      const byId = new Map<string, Frame>();
      for (const f of frames) byId.set(f.payload.id ?? f.payload.message_id, f);
      assert.equal(byId.get(fresh.id)?.payload.body, 'while away');
      assert.equal(byId.get(edited.id)?.payload.body, 'edited while away');
      assert.equal(byId.get(removed.id)?.type, 'message_delete');
      assert.deepEqual(byId.get(kept.id)?.payload.reactions, [{ emoji: '🎉', count: 1, me: false }]);
      assert.ok(frames.some((f) => f.payload.body === 'during resume'), 'the message sent during the resume arrived');
      assert.ok(ack.payload.replayed >= 4, `replayed ${ack.payload.replayed}`);
      // Beyond the resume limit (20 here): resync_required.
      await b.close();
      for (let i = 0; i < 25; i++) await send(id, `flood ${i}`);
      b = await connect(bob);
      const r = await b.request({ type: 'subscribe', channel_id: id, since_seq: since });
      assert.equal(r.payload.resync_required, true);
      assert.ok(b.frames.some((f) => f.type === 'resync_required' && f.channel_id === id));
    });

    it('typing is throttled and carries its expiry; send_message and mark_read over the socket are acknowledged', async () => {
      const id = await channel([bob]);
      const a = await connect(alice);
      const b = await connect(bob);
      await b.request({ type: 'subscribe', channel_id: id });
      a.send({ type: 'typing', channel_id: id });
      a.send({ type: 'typing', channel_id: id });
      const typing = await b.next((f) => f.type === 'typing');
      assert.equal(typing.payload.user_id, alice.id);
      assert.ok(typing.payload.expires_in_ms > 0);
      assert.deepEqual(await b.collect(300, (f) => f.type === 'typing'), [], 'the second one within the throttle window is not sent');

      const sent = await a.request({ type: 'send_message', channel_id: id, payload: { body: 'over the socket', client_msg_id: 'ws-1' } });
      assert.equal(sent.payload.message.body, 'over the socket');
      assert.equal((await b.next((f) => f.type === 'message')).payload.id, sent.payload.message.id);
      const again = await a.request({ type: 'send_message', channel_id: id, payload: { body: 'over the socket', client_msg_id: 'ws-1' } });
      assert.equal(again.payload.replayed, true);
      assert.equal(again.payload.message.id, sent.payload.message.id);
      await assert.rejects(a.request({ type: 'send_message', channel_id: id, payload: { body: 'x'.repeat(40_001) } }), /validation/);
      const read = await b.request({ type: 'mark_read', channel_id: id });
      assert.equal(read.payload.unread, 0);
    });

    it('presence: online while any connection of the user is, offline when the last one closes', async () => {
      const org = await t.services.orgs.getRow(alice.orgId);
      const dave = await makeUser(t.app, t.services, org!.id, 'member');
      const watcher = await connect(alice);
      const c1 = await connect(dave);
      const online = await watcher.next((f) => f.type === 'presence' && f.payload.user_id === dave.id);
      assert.equal(online.payload.status, 'online');
      const c2 = await connect(dave);
      await c1.close();
      assert.deepEqual(await watcher.collect(300, (f) => f.type === 'presence' && f.payload.user_id === dave.id), [], 'still online through the second connection');
      // A status the user chooses is kept while connected, and announced.
      assert.equal((await call(t.app, 'PUT', '/api/v1/users/status', { token: dave.token, body: { status: 'dnd' } })).statusCode, 200);
      const dnd = await watcher.next((f) => f.type === 'presence' && f.payload.user_id === dave.id);
      assert.equal(dnd.payload.status, 'dnd');
      await c2.close();
      const offline = await watcher.next((f) => f.type === 'presence' && f.payload.user_id === dave.id);
      assert.equal(offline.payload.status, 'offline');
    });
  });
}

/**
 * Opens a socket and sends a ping the moment it is open, before the server's hello: the server
 * must not lose it while it checks the connection (the socket is paused across any wait).
 */
async function requestAtOpen(base: string, token: string): Promise<{ socket: TestSocket; pong: Frame }> {
  const socket = await TestSocket.open(`${base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(token)}`);
  socket.send({ type: 'ping', id: 'at-open' });
  return { socket, pong: await socket.next((f) => f.type === 'pong' && f.id === 'at-open', 3000) };
}

for (const dialect of testDialects()) {
  describe(`realtime: a request sent the moment the socket opens is not lost (${dialect})`, () => {
    it('without a connect limit: on the first connection (credentials checked) and the next ones (remembered, served without a wait)', async () => {
      const t = await newTestApp({ dialect, env: { RATE_LIMIT_MAX: '0', WS_CONNECT_LIMIT_MAX: '0' } });
      const sockets: TestSocket[] = [];
      try {
        const base = await listening(t);
        const org = await makeOrg(t.services);
        const erin = await makeUser(t.app, t.services, org.id, 'member');
        for (const round of ['checked', 'remembered', 'remembered again']) {
          const s = await requestAtOpen(base, erin.token);
          sockets.push(s.socket);
          assert.equal(s.socket.frames[0]!.type, 'hello', `${round}: hello comes first`);
          assert.equal(s.socket.frames[0]!.payload.user_id, erin.id, round);
        }
        // Refused credentials still close with 4401, with or without a wait.
        const bad = await TestSocket.open(`${base.replace(/^http/, 'ws')}/ws?token=not-a-token`);
        assert.equal((await bad.closed).code, 4401);
      } finally {
        for (const s of sockets) s.ws.terminate();
        await t.close();
      }
    });

    it('with Redis (connect limit and bus): a request sent at open is answered after hello, whatever the connect waits for', async (ctx) => {
      if (!process.env.PARLEY_TEST_REDIS_URL) return ctx.skip('SKIPPED: no Redis server in this run (see the test harness banner)');
      // Limit on: the connect waits for Redis before anything else. Limit off: remembered
      // credentials wait for nothing, unless the user's topic must be subscribed in Redis first.
      for (const limit of ['120', '0']) {
        const t = await newTestApp({ dialect, redis: true, env: { RATE_LIMIT_MAX: '0', WS_CONNECT_LIMIT_MAX: limit } });
        const sockets: TestSocket[] = [];
        try {
          const base = await listening(t);
          const gauge = async () => Number(/chat_websocket_connections (\d+)/.exec(await t.app.metrics.registry.getSingleMetricAsString('chat_websocket_connections'))?.[1]);
          const org = await makeOrg(t.services);
          const fay = await makeUser(t.app, t.services, org.id, 'member');
          const round = async (name: string) => {
            const s = await requestAtOpen(base, fay.token);
            sockets.push(s.socket);
            // (The user's own presence may come too: the socket hears its organization.)
            assert.deepEqual(
              s.socket.frames.map((f) => f.type).filter((type) => type !== 'presence'),
              ['hello', 'pong'],
              `limit ${limit}, ${name}`,
            );
            assert.equal(s.socket.frames[0]!.type, 'hello', `limit ${limit}, ${name}`);
          };
          await round('credentials checked');
          await round('credentials remembered, topics subscribed');
          for (const s of sockets.splice(0)) await s.close();
          while ((await gauge()) !== 0) await new Promise((r) => setTimeout(r, 20));
          await round('credentials remembered, topics subscribed again');
        } finally {
          for (const s of sockets) s.ws.terminate();
          await t.close();
        }
      }
    });
  });
}

describe('realtime: the /ws endpoint over plain HTTP', () => {
  it('answers a GET without an upgrade with 426 and an error code, and an upgrade on another path with 404', async () => {
    const t = await newTestApp({ env: { RATE_LIMIT_MAX: '0' } });
    try {
      const base = await listening(t);
      const plain = await fetch(`${base}/ws`);
      assert.equal(plain.status, 426);
      assert.equal(((await plain.json()) as { error: { code: string } }).error.code, 'realtime.upgrade_required');
      const elsewhere = await TestSocket.open(`${base.replace(/^http/, 'ws')}/api/v1/ws`).then(
        () => 'opened',
        (err: Error) => err.message,
      );
      assert.match(elsewhere, /404/);
    } finally {
      await t.close();
    }
  });
});

describe('realtime: a client that does not read is cut off; the others keep receiving', () => {
  it('drops the slow consumer only', async () => {
    const t = await newTestApp({ env: { RATE_LIMIT_MAX: '0', WS_MAX_BUFFERED_BYTES: '65536' } });
    try {
      const base = await listening(t);
      const org = await makeOrg(t.services);
      const alice = await makeUser(t.app, t.services, org.id, 'member');
      const bob = await makeUser(t.app, t.services, org.id, 'member');
      const id = (await call(t.app, 'POST', '/api/v1/channels', { token: alice.token, body: { name: 'firehose', members: [bob.id] } })).data.id as string;
      const slow = await TestSocket.connect(base, bob.token);
      const fast = await TestSocket.connect(base, alice.token);
      await slow.request({ type: 'subscribe', channel_id: id });
      await fast.request({ type: 'subscribe', channel_id: id });
      // Stop reading: the kernel buffers fill, then the server's.
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const body = 'y'.repeat(30_000);
      for (let i = 0; i < 150; i++) {
        const r = await call(t.app, 'POST', `/api/v1/channels/${id}/messages`, { token: alice.token, body: { body } });
        assert.equal(r.statusCode, 201);
      }
      await fast.next((f) => f.type === 'message' && f.payload.seq === 150, 10_000);
      const metrics = await t.app.metrics.registry.getSingleMetricAsString('chat_ws_slow_clients_dropped_total');
      assert.match(metrics, /chat_ws_slow_clients_dropped_total 1/);
      fast.ws.terminate();
      slow.ws.terminate();
    } finally {
      await t.close();
    }
  });
});

describe('realtime: heartbeats, frame size, personal topic', () => {
  it('closes a connection that stops answering pings (4408), refuses oversized frames, and delivers DMs on the personal topic once', async () => {
    const t = await newTestApp({ env: { RATE_LIMIT_MAX: '0', WS_HEARTBEAT_MS: '150', WS_MAX_FRAME_BYTES: '4096' } });
    const sockets: TestSocket[] = [];
    try {
      const base = await listening(t);
      const org = await makeOrg(t.services);
      const alice = await makeUser(t.app, t.services, org.id, 'member');
      const bob = await makeUser(t.app, t.services, org.id, 'member');
      const gauge = async () => Number(/chat_websocket_connections (\d+)/.exec(await t.app.metrics.registry.getSingleMetricAsString('chat_websocket_connections'))?.[1]);

      // A client whose pongs never come (its socket stops reading) is dropped after about two intervals.
      const dead = await TestSocket.connect(base, alice.token);
      sockets.push(dead);
      assert.equal(await gauge(), 1);
      (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const started = Date.now();
      while ((await gauge()) !== 0 && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await gauge(), 0, 'the server let go of the dead connection');
      assert.ok(Date.now() - started < 3000);

      // A frame above WS_MAX_FRAME_BYTES closes the connection with 1009 (message too big).
      const big = await TestSocket.connect(base, alice.token);
      sockets.push(big);
      big.send({ type: 'ping', id: 'p', pad: 'z'.repeat(8000) });
      assert.equal((await big.closed).code, 1009);

      // A DM reaches the other person without subscribing (personal topic), and only once when subscribed.
      const dm = await call(t.app, 'POST', '/api/v1/dm', { token: alice.token, body: { user_id: bob.id } });
      assert.ok(dm.statusCode < 300, dm.body);
      const dmId = dm.data.conversation?.id ?? dm.data.id;
      const b = await TestSocket.connect(base, bob.token);
      sockets.push(b);
      const first = await call(t.app, 'POST', `/api/v1/channels/${dmId}/messages`, { token: alice.token, body: { body: 'psst' } });
      assert.equal((await b.next((f) => f.type === 'message')).payload.id, first.data.id);
      await b.request({ type: 'subscribe', channel_id: dmId });
      const second = await call(t.app, 'POST', `/api/v1/channels/${dmId}/messages`, { token: alice.token, body: { body: 'again' } });
      await b.next((f) => f.type === 'message' && f.payload.id === second.data.id);
      assert.deepEqual(await b.collect(200, (f) => f.type === 'message' && f.payload.id === second.data.id), [], 'one copy only');

      // The personal topic is one bus subscription per user on this node, shared by the user's
      // sockets: each gets the DM; closing one leaves the others served; closing all, then
      // connecting again, subscribes afresh.
      const b2 = await TestSocket.connect(base, bob.token);
      const b3 = await TestSocket.connect(base, bob.token);
      sockets.push(b2, b3);
      const third = await call(t.app, 'POST', `/api/v1/channels/${dmId}/messages`, { token: alice.token, body: { body: 'to all of you' } });
      for (const s of [b2, b3]) assert.equal((await s.next((f) => f.type === 'message')).payload.id, third.data.id);
      await b2.close();
      const fourth = await call(t.app, 'POST', `/api/v1/channels/${dmId}/messages`, { token: alice.token, body: { body: 'still there?' } });
      assert.equal((await b3.next((f) => f.type === 'message' && f.payload.id === fourth.data.id)).payload.body, 'still there?');
      await b3.close();
      await b.close();
      while ((await gauge()) !== 0) await new Promise((r) => setTimeout(r, 20));
      const b4 = await TestSocket.connect(base, bob.token);
      sockets.push(b4);
      const fifth = await call(t.app, 'POST', `/api/v1/channels/${dmId}/messages`, { token: alice.token, body: { body: 'back again' } });
      assert.equal((await b4.next((f) => f.type === 'message')).payload.id, fifth.data.id);
    } finally {
      for (const s of sockets) s.ws.terminate();
      await t.close();
    }
  });
});
