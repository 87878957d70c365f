import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signWebhook, verifyWebhook } from './signature.ts';

// The test vector published in docs/events.md ("Verifying a delivery"). If this test has to
// change, every receiver's verification breaks: change the docs and the scheme version instead.
const VECTOR = {
  secret: 'whsec_k3Yp7TqL9vXz2RbN5mWc8HdJ4fGs6AeQ1uVo0iKyBtE',
  timestamp: '1700000000',
  body: '{"event_id":"6f1c9a52-3c2e-4f4b-9a57-0d2b1c0e7a11","event":"chat.message.deleted","occurred_at":"2023-11-14T22:13:20.000Z","org_id":"0b5e2a39-7c61-4c1e-8f0d-3a9e5b7c2d44","conversation_id":"9d7b1c3e-2a4f-4e6d-8b1a-5c3d2e1f0a9b","message_id":"3e8f6a2b-1c4d-4b7e-9f0a-2d5c8e1b4a7f"}',
  signature: 'v1=df02197b6b60e613521e6670a5c1a59df9c7c29b4783c37176bd40170bd6f354',
};

describe('webhook signatures', () => {
  it('match the documented test vector', () => {
    assert.equal(signWebhook(VECTOR.secret, VECTOR.timestamp, VECTOR.body), VECTOR.signature);
    assert.equal(signWebhook(VECTOR.secret, Number(VECTOR.timestamp), VECTOR.body), VECTOR.signature);
  });

  it('the documented vector is the one in docs/events.md', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../../docs/events.md', import.meta.url), 'utf8');
    for (const part of [VECTOR.secret, VECTOR.timestamp, VECTOR.body, VECTOR.signature]) assert.ok(doc.includes(part), `docs/events.md shows ${part.slice(0, 40)}`);
  });

  it('verification: valid, tampered, wrong secret, missing, stale, several schemes', () => {
    const now = Number(VECTOR.timestamp) + 10;
    const h = { timestamp: VECTOR.timestamp, signature: VECTOR.signature };
    assert.equal(verifyWebhook(VECTOR.secret, h, VECTOR.body, now), true);
    assert.equal(verifyWebhook(VECTOR.secret, h, VECTOR.body.replace('deleted', 'new'), now), false, 'tampered body');
    assert.equal(verifyWebhook('whsec_other', h, VECTOR.body, now), false, 'wrong secret');
    assert.equal(verifyWebhook(VECTOR.secret, { ...h, signature: undefined }, VECTOR.body, now), false, 'missing signature');
    assert.equal(verifyWebhook(VECTOR.secret, { ...h, timestamp: undefined }, VECTOR.body, now), false, 'missing timestamp');
    assert.equal(verifyWebhook(VECTOR.secret, { ...h, timestamp: '1700000001' }, VECTOR.body, now), false, 'timestamp is signed');
    assert.equal(verifyWebhook(VECTOR.secret, h, VECTOR.body, now + 3600), false, 'too old');
    assert.equal(verifyWebhook(VECTOR.secret, { ...h, signature: `v2=abc, ${VECTOR.signature}` }, VECTOR.body, now), true, 'one of several entries');
  });
});
