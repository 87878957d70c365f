/**
 * Checks the test harness itself (test/run.ts): the servers it hands to the
 * tests answer, and a test can stop and restart Redis on the same port.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { findRedisServerBin, startRedisServer } from './helpers/redis-server.js';

/** Why the tests of an engine are skipped, or undefined when its URL is set. */
function skipReason(engine: 'PG' | 'REDIS'): string | undefined {
  if (process.env[`PARLEY_TEST_${engine}_URL`]) return undefined;
  return process.env[`PARLEY_TEST_SKIP_${engine}`] === '1'
    ? `PARLEY_TEST_SKIP_${engine}=1: no ${engine === 'PG' ? 'PostgreSQL' : 'Redis'} for this run`
    : `PARLEY_TEST_${engine}_URL is not set (run through \`npm test\`)`;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A client that reconnects quickly and does not print connection errors while Redis is down. */
function redisClient(url: string): Redis {
  const client = new Redis(url, { retryStrategy: () => 50, maxRetriesPerRequest: 20 });
  client.on('error', () => {});
  return client;
}

test('PostgreSQL from PARLEY_TEST_PG_URL answers select 1', async (t) => {
  const reason = skipReason('PG');
  if (reason !== undefined) return t.skip(reason);
  const client = new Client({ connectionString: process.env.PARLEY_TEST_PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ one: number }>('select 1 as one');
    assert.deepEqual(rows, [{ one: 1 }]);
  } finally {
    await client.end();
  }
});

test('Redis from PARLEY_TEST_REDIS_URL answers PING', async (t) => {
  const reason = skipReason('REDIS');
  if (reason !== undefined) return t.skip(reason);
  const client = redisClient(process.env.PARLEY_TEST_REDIS_URL ?? '');
  try {
    assert.equal(await client.ping(), 'PONG');
  } finally {
    client.disconnect();
  }
});

test('startRedisServer can stop and restart Redis on the same port', async (t) => {
  const bin = process.env.PARLEY_TEST_SKIP_REDIS === '1' ? undefined : findRedisServerBin();
  if (bin === undefined) return t.skip('no redis-server binary (PARLEY_TEST_SKIP_REDIS=1 or not on PATH)');

  const first = await startRedisServer({ bin });
  t.after(() => first.stop());
  const client = redisClient(first.url);
  t.after(() => client.disconnect());
  await client.set('harness:key', 'before restart');

  await first.stop();
  assert.equal(await acceptsTcp(first.port), false, 'nothing listens while Redis is stopped');

  const second = await startRedisServer({ bin, port: first.port });
  t.after(() => second.stop());
  assert.equal(second.url, first.url);
  // The client from before the outage reconnects by itself; the new server starts empty.
  assert.equal(await client.get('harness:key'), null);
  assert.equal(await client.ping(), 'PONG');
});
