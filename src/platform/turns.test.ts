import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnGate } from './turns.ts';

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
});
