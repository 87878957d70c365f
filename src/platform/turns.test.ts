import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forEachInTurns, TurnGate } from './turns.ts';

describe('TurnGate', () => {
  it('gives each caller its own event-loop turn, in call order, with I/O callbacks of each turn in between', async () => {
    const gate = new TurnGate();
    const log: string[] = [];
    const waits = [1, 2, 3].map((n) =>
      gate.next().then(() => {
        log.push(`work ${n}`);
        // Something that arrives while this piece of work runs (like a request read in the poll phase)
        // must be served before the next piece of work starts.
        setImmediate(() => log.push(`after ${n}`));
      }),
    );
    assert.equal(gate.waiting, 3);
    await Promise.all(waits);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['work 1', 'after 1', 'work 2', 'after 2', 'work 3', 'after 3']);
    assert.equal(gate.waiting, 0);
  });

  it('is idle when nobody waits (a later caller is served on its own)', async () => {
    const gate = new TurnGate();
    await gate.next();
    await gate.next();
    assert.equal(gate.waiting, 0);
  });

  it('lets `perTurn` callers through per turn, in call order', async () => {
    const gate = new TurnGate(2);
    const log: string[] = [];
    const waits = [1, 2, 3, 4, 5].map((n) =>
      gate.next().then(() => {
        log.push(`work ${n}`);
        setImmediate(() => log.push(`after ${n}`));
      }),
    );
    await Promise.all(waits);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(log, ['work 1', 'work 2', 'after 1', 'after 2', 'work 3', 'work 4', 'after 3', 'after 4', 'work 5', 'after 5']);
  });

  it('run(): at most `maxRunning` unfinished at once, started in call order, a turn each as next()', async () => {
    const gate = new TurnGate(4, 3);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const finish = new Map<number, () => void>();
    const runs = [1, 2, 3, 4, 5, 6, 7].map((n) =>
      gate.run(async () => {
        started.push(n);
        running += 1;
        most = Math.max(most, running);
        await new Promise<void>((r) => finish.set(n, r));
        running -= 1;
        return n * 10;
      }),
    );
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [1, 2, 3], 'three slots');
    finish.get(2)!();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [1, 2, 3, 4], 'a freed slot lets the next caller in');
    for (let n = 1; n <= 7; n++) {
      while (!finish.has(n)) await new Promise((r) => setImmediate(r));
      finish.get(n)!();
    }
    assert.deepEqual(await Promise.all(runs), [10, 20, 30, 40, 50, 60, 70]);
    assert.deepEqual(started, [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(most, 3);
    assert.equal(gate.waiting, 0);
  });

  it('run(): a failing piece of work frees its slot', async () => {
    const gate = new TurnGate(1, 1);
    await assert.rejects(gate.run(async () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await gate.run(async () => 'next'), 'next');
  });
});

describe('forEachInTurns', () => {
  it('calls fn on every item in order, `perTurn` per turn, with what arrived meanwhile served between groups', async () => {
    const log: string[] = [];
    await forEachInTurns([1, 2, 3, 4, 5], 2, (n) => {
      log.push(`item ${n}`);
      // Like a request read while this group runs: served before the next group starts.
      if (n % 2 === 1) setImmediate(() => log.push(`after ${n}`));
    });
    assert.deepEqual(log, ['item 1', 'item 2', 'after 1', 'item 3', 'item 4', 'after 3', 'item 5']);
  });

  it('waits for each call before the next, and finishes without a turn when one group holds everything', async () => {
    const log: string[] = [];
    setImmediate(() => log.push('next turn'));
    await forEachInTurns(['a', 'b'], 2, async (x) => {
      await Promise.resolve();
      log.push(x);
    });
    log.push('done');
    assert.deepEqual(log, ['a', 'b', 'done']);
  });
});
