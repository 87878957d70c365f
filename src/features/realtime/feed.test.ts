import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConversationFeed, type FeedOptions, type FeedSubscriber, type FillFn } from './feed.ts';

type FillResult = Awaited<ReturnType<FillFn>>;

/** The feed's database dependency, played by canned answers; records the `since` of every call. */
function fakeFill(answer: (since: number) => FillResult | Promise<FillResult> = (since) => ({ version: since, events: [] })) {
  const calls: number[] = [];
  const fill: FillFn = async (since) => {
    calls.push(since);
    return answer(since);
  };
  return { fill, calls };
}

function newFeed(fill: FillFn, opts: Partial<FeedOptions> = {}) {
  const errors: unknown[] = [];
  const feed = new ConversationFeed(fill, { gapWaitMs: 20, chunk: 100, onError: (err) => errors.push(err), ...opts });
  return { feed, errors };
}

/** A subscriber that records what it got (`json`, with `@seq` when the event has one). */
function subscriber(from = 0): FeedSubscriber & { got: string[] } {
  const got: string[] = [];
  // Several subscribers get the bytes encoded once; one gets the string: the text is the same.
  return { from, got, deliver: (frame, seq) => void got.push(seq === undefined ? frame.toString() : `${frame.toString()}@${seq}`) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));

async function waitFor(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const bus = (seq: number) => `bus:${seq}`;

describe('ConversationFeed', () => {
  it('delivers seq events in order to every subscriber and moves their `from`', () => {
    const { feed } = newFeed(fakeFill().fill);
    const a = subscriber();
    const b = subscriber();
    feed.subscribers.add(a).add(b);
    feed.start(0);
    for (const seq of [1, 2, 3]) feed.onEvent(seq, bus(seq));
    for (const s of [a, b]) {
      assert.deepEqual(s.got, ['bus:1@1', 'bus:2@2', 'bus:3@3']);
      assert.equal(s.from, 3);
    }
    assert.equal(feed.last, 3);
    feed.stop();
  });

  it('drops duplicates and old seqs, also of events still waiting for a missing one', async () => {
    const { fill, calls } = fakeFill();
    const { feed } = newFeed(fill);
    const a = subscriber(5);
    feed.subscribers.add(a);
    feed.start(5);
    for (const seq of [3, 5, 6, 6, 7, 6, 9, 9]) feed.onEvent(seq, bus(seq));
    feed.onEvent(8, bus(8));
    feed.onEvent(8, bus(8));
    assert.deepEqual(a.got, ['bus:6@6', 'bus:7@7', 'bus:8@8', 'bus:9@9']);
    await sleep(60);
    assert.deepEqual(calls, [], 'nothing was missing, so no fill');
    feed.stop();
  });

  it('puts out-of-order events back in order when the missing one arrives within gapWaitMs, without a fill', async () => {
    const { fill, calls } = fakeFill();
    const { feed } = newFeed(fill, { gapWaitMs: 100 });
    const a = subscriber(1);
    feed.subscribers.add(a);
    feed.start(1);
    feed.onEvent(3, bus(3));
    feed.onEvent(4, bus(4));
    assert.deepEqual(a.got, [], 'held while 2 is missing');
    feed.onEvent(2, bus(2));
    assert.deepEqual(a.got, ['bus:2@2', 'bus:3@3', 'bus:4@4']);
    await sleep(150);
    assert.deepEqual(calls, [], 'the gap timer was cleared');
    feed.stop();
  });

  it('fills a real gap from the database after gapWaitMs, drops what the fill covered, then goes on in order', async () => {
    // Message 4 was edited again (as seq 5), so the database has 3 and 5; seq 2 was delivered already.
    const { fill, calls } = fakeFill(() => ({
      version: 5,
      events: [
        { seq: 2, json: 'db:2' },
        { seq: 3, json: 'db:3' },
        { seq: 5, json: 'db:5' },
      ],
    }));
    const gapWaitMs = 40;
    const { feed, errors } = newFeed(fill, { gapWaitMs });
    const a = subscriber(1);
    feed.subscribers.add(a);
    feed.start(1);
    feed.onEvent(2, bus(2));
    const t0 = Date.now();
    for (const seq of [4, 6, 5]) feed.onEvent(seq, bus(seq));
    assert.deepEqual(a.got, ['bus:2@2']);
    await waitFor(() => calls.length > 0, 'the fill');
    assert.ok(Date.now() - t0 >= gapWaitMs - 2, `filled after ${Date.now() - t0} ms, before gapWaitMs`);
    assert.deepEqual(calls, [2], 'filled from the last delivered seq');
    await waitFor(() => a.got.length === 4, 'the filled events');
    assert.deepEqual(a.got, ['bus:2@2', 'db:3@3', 'db:5@5', 'bus:6@6']);
    feed.onEvent(5, bus(5));
    feed.onEvent(7, bus(7));
    assert.deepEqual(a.got.slice(4), ['bus:7@7']);
    assert.equal(feed.last, 7);
    assert.deepEqual(errors, []);
    feed.stop();
  });

  it('holds events that arrive during a fill, then delivers them after it in order', async () => {
    let answer!: (r: FillResult) => void;
    const { fill, calls } = fakeFill(() => new Promise<FillResult>((r) => (answer = r)));
    const { feed } = newFeed(fill);
    const a = subscriber();
    feed.subscribers.add(a);
    feed.start(0);
    feed.onEvent(2, bus(2));
    await waitFor(() => calls.length === 1, 'the fill');
    for (const seq of [1, 3, 4]) feed.onEvent(seq, bus(seq));
    assert.deepEqual(a.got, [], 'nothing overtakes the fill');
    answer({
      version: 2,
      events: [
        { seq: 1, json: 'db:1' },
        { seq: 2, json: 'db:2' },
      ],
    });
    await waitFor(() => a.got.length === 4, 'delivery after the fill');
    assert.deepEqual(a.got, ['db:1@1', 'db:2@2', 'bus:3@3', 'bus:4@4']);
    assert.deepEqual(calls, [0]);
    feed.stop();
  });

  it('delivers events without seq (typing) at once: before start and while a gap is open', () => {
    const { feed } = newFeed(fakeFill().fill);
    const a = subscriber();
    feed.subscribers.add(a);
    feed.onEvent(undefined, 'typing:1');
    feed.start(0);
    feed.onEvent(2, bus(2));
    feed.onEvent(undefined, 'typing:2');
    assert.deepEqual(a.got, ['typing:1', 'typing:2']);
    assert.equal(a.from, 0, 'typing does not move the position');
    feed.onEvent(1, bus(1));
    assert.deepEqual(a.got, ['typing:1', 'typing:2', 'bus:1@1', 'bus:2@2']);
    feed.stop();
  });

  it('holds events that arrive before start; at start drops those at or below the version and fills a gap left', async () => {
    const { fill, calls } = fakeFill(() => ({ version: 6, events: [{ seq: 6, json: 'db:6' }] }));
    const { feed } = newFeed(fill);
    const a = subscriber(3);
    feed.subscribers.add(a);
    for (const seq of [2, 4, 7, 5, 3]) feed.onEvent(seq, bus(seq));
    await sleep(60);
    assert.deepEqual(a.got, []);
    assert.deepEqual(calls, [], 'no gap can be known before the position is');
    assert.equal(feed.last, undefined);
    feed.start(3);
    assert.deepEqual(a.got, ['bus:4@4', 'bus:5@5'], 'held events above the version, in order');
    await waitFor(() => a.got.length === 4, 'the gap before 7 to be filled');
    assert.deepEqual(calls, [5]);
    assert.deepEqual(a.got, ['bus:4@4', 'bus:5@5', 'db:6@6', 'bus:7@7']);
    feed.stop();
  });

  it("a later start (another subscriber's database read) does not move a started feed past events in flight", () => {
    const { feed } = newFeed(fakeFill().fill, { gapWaitMs: 1000 });
    const a = subscriber(5);
    feed.subscribers.add(a);
    feed.start(5);
    feed.onEvent(7, bus(7)); // 6 is still on its way through the bus
    const b = subscriber(7); // b read version 7 from the database
    feed.subscribers.add(b);
    feed.start(7);
    feed.start(3);
    feed.onEvent(6, bus(6));
    feed.onEvent(8, bus(8));
    assert.deepEqual(a.got, ['bus:6@6', 'bus:7@7', 'bus:8@8'], 'a misses nothing');
    assert.deepEqual(b.got, ['bus:8@8'], 'b gets nothing it read itself');
    feed.stop();
  });

  it("honours each subscriber's `from`: no seq at or below it is delivered again", () => {
    const { feed } = newFeed(fakeFill().fill);
    const a = subscriber(1);
    const b = subscriber(3);
    feed.subscribers.add(a).add(b);
    feed.start(1);
    for (const seq of [2, 3, 4]) feed.onEvent(seq, bus(seq));
    assert.deepEqual(a.got, ['bus:2@2', 'bus:3@3', 'bus:4@4']);
    assert.deepEqual(b.got, ['bus:4@4']);
    assert.equal(b.from, 4);
    feed.stop();
  });

  it('encodes an event once for all its subscribers (the same bytes to each); a lone subscriber gets the string', async () => {
    const { feed } = newFeed(fakeFill().fill);
    const frames: Array<string | Buffer> = [];
    const subs = Array.from({ length: 3 }, () => ({ from: 0, deliver: (frame: string | Buffer) => void frames.push(frame) }));
    for (const s of subs) feed.subscribers.add(s);
    feed.start(0);
    feed.onEvent(1, bus(1));
    assert.equal(frames.length, 3);
    assert.ok(Buffer.isBuffer(frames[0]) && frames.every((f) => f === frames[0]), 'one Buffer shared by the three');
    assert.equal(frames[0]!.toString(), bus(1));
    feed.subscribers.delete(subs[0]!);
    feed.subscribers.delete(subs[1]!);
    feed.onEvent(2, bus(2));
    assert.equal(frames[3], bus(2));
    feed.stop();
  });

  it('fans a big room out in chunks over several event-loop turns, keeping each subscriber in order', async () => {
    const { feed, errors } = newFeed(fakeFill().fill, { chunk: 10 });
    const log: Array<{ sub: number; json: string }> = [];
    const subs = Array.from({ length: 35 }, (_, i) => ({ from: 0, deliver: (frame: string | Buffer) => void log.push({ sub: i, json: frame.toString() }) }));
    for (const s of subs) feed.subscribers.add(s);
    feed.start(0);

    feed.onEvent(1, bus(1));
    const perTurn = [log.length];
    while (log.length < 35 && perTurn.length < 100) {
      const before = log.length;
      await turn();
      perTurn.push(log.length - before);
    }
    assert.equal(log.length, 35);
    assert.ok(perTurn.length >= 4, `35 subscribers in chunks of 10 take at least 4 turns: ${perTurn}`);
    assert.ok(
      perTurn.every((n) => n <= 10),
      `at most a chunk per turn: ${perTurn}`,
    );

    log.length = 0;
    feed.onEvent(2, bus(2));
    feed.onEvent(undefined, 'typing');
    feed.onEvent(3, bus(3));
    feed.subscribers.delete(subs[0]!); // not served yet: subscribers are served last-added first
    await waitFor(() => log.length === 3 * 34, 'all deliveries');
    for (const [i] of subs.entries()) {
      const got = log.filter((e) => e.sub === i).map((e) => e.json);
      assert.deepEqual(got, i === 0 ? [] : ['bus:2', 'typing', 'bus:3'], `subscriber ${i}`);
    }
    const lastOf2 = log.findLastIndex((e) => e.json === 'bus:2');
    assert.ok(lastOf2 < log.findIndex((e) => e.json === 'typing'), 'an event reaches everyone before the next one starts');
    assert.deepEqual(errors, []);
    feed.stop();
  });

  it('reports a throwing subscriber through onError; the others still get the event', () => {
    const { feed, errors } = newFeed(fakeFill().fill);
    const a = subscriber();
    const boom = new Error('socket gone');
    feed.subscribers.add(a).add({
      from: 0,
      deliver: () => {
        throw boom;
      },
    });
    feed.start(0);
    feed.onEvent(1, bus(1));
    feed.onEvent(2, bus(2));
    assert.deepEqual(a.got, ['bus:1@1', 'bus:2@2']);
    assert.deepEqual(errors, [boom, boom]);
    feed.stop();
  });

  it('reports a failed fill through onError; delivery goes on from the bus, and a later fill is retried', async () => {
    const down = new Error('database down');
    let failing = true;
    const { fill, calls } = fakeFill((since) => {
      if (failing) throw down;
      return { version: since + 1, events: [{ seq: since + 1, json: `db:${since + 1}` }] };
    });
    const { feed, errors } = newFeed(fill, { gapWaitMs: 100 });
    const a = subscriber(1);
    feed.subscribers.add(a);
    feed.start(1);
    feed.onEvent(3, bus(3));
    await waitFor(() => errors.length === 1, 'the fill error');
    assert.equal(errors[0], down);
    feed.onEvent(2, bus(2));
    feed.onEvent(4, bus(4));
    assert.deepEqual(a.got, ['bus:2@2', 'bus:3@3', 'bus:4@4']);

    failing = false;
    feed.onEvent(6, bus(6));
    await waitFor(() => a.got.length === 5, 'the retried fill');
    assert.deepEqual(a.got.slice(3), ['db:5@5', 'bus:6@6']);
    assert.ok(
      errors.every((e) => e === down),
      'only the fill failed',
    );
    assert.equal(calls.length, errors.length + 1, 'one successful call after the failures');
    feed.stop();
  });

  it('catchUp reads what changed since the last delivered event, once at a time, and only after start', async () => {
    let answer!: (r: FillResult) => void;
    const { fill, calls } = fakeFill(() => new Promise<FillResult>((r) => (answer = r)));
    const { feed } = newFeed(fill);
    const a = subscriber(3);
    feed.subscribers.add(a);
    await feed.catchUp();
    assert.deepEqual(calls, [], 'no position yet');
    feed.start(3);
    const first = feed.catchUp();
    await feed.catchUp();
    assert.deepEqual(calls, [3], 'a catch-up during a fill does not start another');
    answer({
      version: 5,
      events: [
        { seq: 4, json: 'db:4' },
        { seq: 5, json: 'db:5' },
      ],
    });
    await first;
    assert.deepEqual(a.got, ['db:4@4', 'db:5@5']);
    assert.equal(feed.last, 5);
    feed.stop();
  });

  it('stop clears the gap timer: nothing is left scheduled and no fill happens afterwards', async (t) => {
    const { fill, calls } = fakeFill();
    const { feed } = newFeed(fill, { gapWaitMs: 20 });
    feed.subscribers.add(subscriber());
    const set = t.mock.method(globalThis, 'setTimeout');
    const clear = t.mock.method(globalThis, 'clearTimeout');
    feed.start(0);
    feed.onEvent(2, bus(2));
    feed.stop();
    const timers = set.mock.calls.map((c) => c.result);
    const cleared = new Set(clear.mock.calls.map((c) => c.arguments[0]));
    set.mock.restore();
    clear.mock.restore();
    assert.equal(timers.length, 1, 'the gap timer');
    assert.ok(cleared.has(timers[0]), 'cleared by stop');
    await sleep(80);
    assert.deepEqual(calls, []);
  });
});
