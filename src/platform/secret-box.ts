import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Secrets at rest (platform credentials, webhook secrets): AES-256-GCM with a random 96-bit IV,
 * stored as `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts). Several keys can be configured
 * (ENCRYPTION_KEYS="new:<base64 32 bytes>,old:<...>"): the first encrypts, any of them decrypts by
 * its id, so keys rotate without downtime (re-encrypt, then drop the old key). Without configured
 * keys, one is derived from the JWT secret (HKDF-SHA256), which ties the two together: set
 * ENCRYPTION_KEYS in production.
 */
export class SecretBox {
  readonly #keys: Map<string, Buffer>;
  readonly #current: string;

  constructor(keys: Array<{ id: string; key: Buffer }>) {
    if (keys.length === 0) throw new Error('SecretBox needs at least one key');
    for (const k of keys) {
      if (k.key.length !== 32) throw new Error(`encryption key "${k.id}" must be 32 bytes`);
      if (!/^[A-Za-z0-9_-]+$/.test(k.id)) throw new Error(`encryption key id "${k.id}": letters, digits, - and _ only`);
    }
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
    this.#current = keys[0]!.id;
  }

  /** From ENCRYPTION_KEYS entries, else derived from the JWT secret. */
  static fromConfig(entries: Array<{ id: string; key: string }>, jwtSecret: string): SecretBox {
    if (entries.length) return new SecretBox(entries.map((e) => ({ id: e.id, key: Buffer.from(e.key, 'base64') })));
    const derived = Buffer.from(hkdfSync('sha256', jwtSecret, 'parley', 'parley secrets at rest v1', 32));
    return new SecretBox([{ id: 'jwt', key: derived }]);
  }

  get currentKeyId(): string {
    return this.#current;
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.#current)!, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', this.#current, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  open(sealed: string): string {
    const [v, id, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !id || iv === undefined || tag === undefined || ct === undefined) throw new Error('not a sealed secret');
    const key = this.#keys.get(id);
    if (!key) throw new Error(`no encryption key "${id}" is configured`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** Whether a sealed value uses an older key (re-seal it when rotating). */
  isStale(sealed: string): boolean {
    return sealed.split('.')[1] !== this.#current;
  }
}
