import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { newTestDb, testDialects } from '../helpers/new-test-db.ts';
import { findRedisServerBin, startRedisServer } from '../helpers/redis-server.ts';
import { post, startServer, stop, type Running } from '../helpers/server-process.ts';
import { TestSocket } from '../helpers/ws-client.ts';

const register = async (node: Running, username: string) => {
  const r = await post(node.base, '/api/v1/auth/register', { username, password: `${username}-password-1` });
  assert.equal(r.status, 201, await r.clone().text());
  const body = (await r.json()) as { token: string; user: { id: string } };
  return { token: body.token, id: body.user.id };
};

/**
 * Two Parley processes on one PostgreSQL database and one Redis (its own server, so that it can
 * be restarted mid-stream): realtime events cross nodes, and nothing is lost when Redis goes away.
 */
describe('realtime across two processes (PostgreSQL + Redis)', () => {
  const pg = testDialects().includes('postgres');
  const redisBin = findRedisServerBin();
  const skip = !pg ? 'SKIPPED: no PostgreSQL in this run' : !redisBin ? 'SKIPPED: redis-server is not installed' : false;

  it('a client on node A receives what is posted on node B, sees presence from B, and loses nothing when Redis restarts', { skip, timeout: 120_000 }, async () => {
    const db = await newTestDb('postgres', { migrate: false });
    const redis = await startRedisServer();
    const dir = mkdtempSync(join(tmpdir(), 'parley-rt-cluster-'));
    const env = { DATA_DIR: dir, DATABASE_URL: db.url, REDIS_URL: redis.url, JWT_SECRET: 'rt-cluster-secret-rt-cluster-secret-00', WS_GAP_WAIT_MS: '100' };
    const a = await startServer(env);
    let b: Awaited<ReturnType<typeof startServer>> | undefined;
    const sockets: TestSocket[] = [];
    try {
      // Inside the try: when B cannot start, A is still stopped (else the test file never ends).
      const nodeB = await startServer(env);
      b = nodeB;
      const ann = await register(a, 'ann');
      const ben = await register(nodeB, 'ben');
      const cid = await register(nodeB, 'cid');
      const ch = await post(a.base, '/api/v1/channels', { name: 'cluster', private: true, members: [ben.id] }, ann.token);
      assert.equal(ch.status, 201);
      const channelId = ((await ch.json()) as { id: string }).id;

      // Ben listens on node A; Ann posts on node B.
      const listener = await TestSocket.connect(a.base, ben.token);
      sockets.push(listener);
      await listener.request({ type: 'subscribe', channel_id: channelId });
      const sendOnB = async (body: string) => {
        const r = await post(nodeB.base, `/api/v1/channels/${channelId}/messages`, { body }, ann.token);
        assert.equal(r.status, 201, await r.clone().text());
        return (await r.json()) as { id: string; seq: number };
      };
      const first = await sendOnB('posted on B');
      assert.equal((await listener.next((f) => f.type === 'message')).payload.id, first.id);

      // Presence: Cid connects to node B; Ann, on node A, sees it.
      const watcher = await TestSocket.connect(a.base, ann.token);
      sockets.push(watcher);
      const cidSocket = await TestSocket.connect(nodeB.base, cid.token);
      sockets.push(cidSocket);
      const online = await watcher.next((f) => f.type === 'presence' && f.payload.user_id === cid.id);
      assert.equal(online.payload.status, 'online');

      // Redis goes away in the middle of a stream of messages posted on B, then comes back.
      const sent: string[] = [];
      for (let i = 0; i < 10; i++) sent.push((await sendOnB(`before outage ${i}`)).id);
      await redis.stop();
      for (let i = 0; i < 10; i++) sent.push((await sendOnB(`during outage ${i}`)).id);
      const restarted = await startRedisServer({ port: redis.port });
      try {
        // After Redis is back, node A reads what it missed from the database (no new event needed).
        const want = new Set(sent);
        const deadline = Date.now() + 20_000;
        const got = () => new Set(listener.frames.filter((f) => f.type === 'message').map((f) => f.payload.id as string));
        while ([...want].some((id) => !got().has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        const missing = [...want].filter((id) => !got().has(id));
        assert.deepEqual(missing, [], 'every message reached the client on node A');
        const seqs = listener.frames.filter((f) => f.channel_id === channelId && f.seq !== undefined).map((f) => f.seq!);
        assert.equal(new Set(seqs).size, seqs.length, 'no duplicate');
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'in order');
        // And a client that reconnects resumes by seq, also across nodes.
        const lastSeen = seqs.at(-1)!;
        await listener.close();
        const after = await sendOnB('after reconnect');
        const resumed = await TestSocket.connect(a.base, ben.token);
        sockets.push(resumed);
        await resumed.request({ type: 'subscribe', channel_id: channelId, since_seq: lastSeen });
        assert.equal((await resumed.next((f) => f.type === 'message')).payload.id, after.id);
      } finally {
        for (const s of sockets) s.ws.terminate();
        await restarted.stop();
      }
    } finally {
      for (const s of sockets) s.ws.terminate();
      await stop(a);
      if (b) await stop(b);
      await redis.stop();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
