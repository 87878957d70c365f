import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SecretBox } from './secret-box.ts';

describe('SecretBox (secrets at rest)', () => {
  it('seals with a fresh IV each time, opens, rejects tampering, and rotates keys', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const old = new SecretBox([{ id: 'k1', key: k1 }]);
    const a = old.seal('token-123');
    assert.notEqual(a, old.seal('token-123'), 'random IV: the same secret seals differently');
    assert.ok(!a.includes('token-123'));
    assert.equal(old.open(a), 'token-123');
    const parts = a.split('.');
    parts[4] = Buffer.from('tampered').toString('base64url');
    assert.throws(() => old.open(parts.join('.')));
    // New key first: new seals use it, old ones still open; then the old key can go.
    const both = new SecretBox([{ id: 'k2', key: k2 }, { id: 'k1', key: k1 }]);
    assert.equal(both.open(a), 'token-123');
    assert.equal(both.isStale(a), true);
    const b = both.seal(both.open(a));
    assert.equal(both.isStale(b), false);
    assert.equal(new SecretBox([{ id: 'k2', key: k2 }]).open(b), 'token-123');
    assert.throws(() => new SecretBox([{ id: 'k2', key: k2 }]).open(a), /no encryption key "k1"/);
    // Without configured keys, a key derived from the JWT secret (stable for the same secret).
    const d1 = SecretBox.fromConfig([], 'x'.repeat(40));
    assert.equal(SecretBox.fromConfig([], 'x'.repeat(40)).open(d1.seal('s')), 's');
  });
});
