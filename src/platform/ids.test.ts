import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newOrderedId } from './ids.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newOrderedId', () => {
  it('is a v7 UUID whose first 48 bits are the millisecond', () => {
    const at = Date.UTC(2026, 10, 21, 12, 0, 0, 123);
    const id = newOrderedId(at);
    assert.match(id, V7);
    assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), at);
  });

  it('sorts as the calls were made, also many times in one millisecond and when the clock steps back', () => {
    const at = Date.UTC(2027, 0, 1);
    const ids = [newOrderedId(at)];
    for (let i = 0; i < 10_000; i++) ids.push(newOrderedId(at)); // more than the 12-bit counter holds: carries into the timestamp
    ids.push(newOrderedId(at - 5_000));
    ids.push(newOrderedId(at + 60_000));
    for (const id of ids) assert.match(id, V7);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  });
});
