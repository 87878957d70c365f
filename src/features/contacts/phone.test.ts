import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizePhone, phoneVariants } from './phone.ts';

describe('phone numbers (CONNECTORS.md §8)', () => {
  it('normalizes to E.164 with full metadata, and knows both forms of a Brazilian mobile', () => {
    const withNine = normalizePhone('+55 81 98788-5943');
    assert.deepEqual(withNine, { ok: true, e164: '+5581987885943', variants: ['+5581987885943', '+558187885943'], type: 'MOBILE' });
    // The registered 12-digit form (a wa_id without "+") is the same person: stored with the 9.
    const without = normalizePhone('558187885943');
    assert.equal(without.ok && without.e164, '+5581987885943');
    assert.deepEqual(without.ok && without.variants, ['+5581987885943', '+558187885943']);
    // Local input defaults to Brazil.
    assert.equal((normalizePhone('(81) 98788-5943') as { e164: string }).e164, '+5581987885943');
  });

  it('never adds a 9 to a landline, and keeps other countries as they are', () => {
    const landline = normalizePhone('+551151362804');
    assert.deepEqual(landline, { ok: true, e164: '+551151362804', variants: ['+551151362804'], type: 'FIXED_LINE' });
    assert.deepEqual(phoneVariants('+553133334444'), ['+553133334444']);
    const us = normalizePhone('+1 415 555 2671');
    assert.equal(us.ok && us.e164, '+14155552671');
    assert.deepEqual(us.ok && us.variants, ['+14155552671']);
    assert.equal((normalizePhone('+44 20 7946 0958') as { e164: string }).e164, '+442079460958');
  });

  it('rejects what is not a valid number, with a reason', () => {
    for (const bad of ['hello', '+55 81 1234', '123', '+999 1234567890', '+55 00 98788-5943']) {
      const r = normalizePhone(bad);
      assert.equal(r.ok, false, bad);
    }
  });
});
