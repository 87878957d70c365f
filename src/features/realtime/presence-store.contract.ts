import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PresenceStore } from './presence-store.ts';

/** A fresh store (keys that collide with no other test) using the given TTL and clock. */
export interface PresenceHarness {
  store: PresenceStore;
  /** Another node's store on the same backend (same Redis prefix, same clock); null for single-node stores. */
  peer: (() => Promise<PresenceStore>) | null;
  /** Closes the stores (and their connections). */
  close(): Promise<void>;
}

export type PresenceFactory = (opts: { ttlMs: number; now: () => number }) => Promise<PresenceHarness>;

/**
 * A clock that moves only when told. Starts at the real time so that Redis, whose PEXPIRE runs on
 * real time, keeps every key at least as long as the store's own (fake) expiry says.
 */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = Date.now();
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Long enough that no real-time expiry (Redis PEXPIRE) happens during a test on the fake clock. */
const TTL = 60_000;

/** One suite for every PresenceStore (Centrifuge mapBrokerFactory). */
export function presenceStoreContract(name: string, make: PresenceFactory): void {
  describe(`PresenceStore contract: ${name}`, () => {
    /** Runs `fn` on a fresh store with a fake clock, and closes it afterwards. */
    const withStore = (fn: (h: PresenceHarness, advance: (ms: number) => void) => Promise<void>) => async () => {
      const clock = fakeClock();
      const h = await make({ ttlMs: TTL, now: clock.now });
      try {
        await fn(h, clock.advance);
      } finally {
        await h.close();
      }
    };
    const counts = async (store: PresenceStore, userIds: string[]) => Object.fromEntries(await store.get(userIds));
    /** What a change returns: n live connections, `active` of them active (all, unless given). */
    const live = (n: number, active = n) => ({ connections: n, active });

    it(
      'get: unknown users are zeros, one entry per user asked, nothing for an empty list',
      withStore(async ({ store }) => {
        assert.deepEqual(await counts(store, ['nobody', 'nobody-else']), {
          nobody: { connections: 0, active: 0 },
          'nobody-else': { connections: 0, active: 0 },
        });
        assert.equal((await store.get([])).size, 0);
      }),
    );

    it(
      'connect and disconnect count the connections of each user',
      withStore(async ({ store }) => {
        assert.deepEqual(await store.connect('u1', 'c1'), live(1));
        assert.deepEqual(await store.connect('u1', 'c2'), live(2));
        assert.deepEqual(await store.connect('u1', 'c3'), live(3));
        assert.deepEqual(await store.connect('u2', 'd1'), live(1));
        assert.deepEqual(await store.connect('u1', 'c1'), live(3), 'connecting the same connection again does not count it twice');
        assert.deepEqual(await counts(store, ['u1', 'u2']), { u1: { connections: 3, active: 3 }, u2: { connections: 1, active: 1 } });
        assert.deepEqual(await store.disconnect('u1', 'c2'), live(2));
        assert.deepEqual(await store.disconnect('u1', 'c1'), live(1));
        assert.deepEqual(await store.disconnect('u1', 'c3'), live(0));
        assert.deepEqual(await counts(store, ['u1', 'u2']), { u1: { connections: 0, active: 0 }, u2: { connections: 1, active: 1 } });
        assert.deepEqual(await store.connect('u1', 'c4'), live(1), 'a user can come back after the last disconnect');
      }),
    );

    it(
      'disconnecting an unknown connection or user is harmless',
      withStore(async ({ store }) => {
        assert.deepEqual(await store.disconnect('nobody', 'c1'), live(0));
        await store.connect('u1', 'c1');
        assert.deepEqual(await store.disconnect('u1', 'never-connected'), live(1));
        assert.deepEqual(await store.disconnect('u1', 'c1'), live(0));
        assert.deepEqual(await store.disconnect('u1', 'c1'), live(0), 'twice');
        assert.deepEqual(await counts(store, ['u1', 'nobody']), { u1: { connections: 0, active: 0 }, nobody: { connections: 0, active: 0 } });
      }),
    );

    it(
      'users are isolated: same connection ids, similar user ids',
      withStore(async ({ store }) => {
        await store.connect('u1', 'c1');
        await store.connect('u1', 'c2');
        await store.connect('u10', 'c1');
        await store.connect('u1:x', 'c1');
        await store.setIdle('u10', 'c1', true);
        assert.deepEqual(await store.disconnect('u1:x', 'c1'), live(0));
        assert.deepEqual(await counts(store, ['u1', 'u10', 'u1:x']), {
          u1: { connections: 2, active: 2 },
          u10: { connections: 1, active: 0 },
          'u1:x': { connections: 0, active: 0 },
        });
      }),
    );

    it(
      'setIdle counts idle connections as live but not active; connect makes a connection active',
      withStore(async ({ store }) => {
        await store.connect('u1', 'c1');
        await store.connect('u1', 'c2');
        assert.deepEqual(await store.setIdle('u1', 'c1', true), live(2, 1));
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 2, active: 1 } });
        assert.deepEqual(await store.setIdle('u1', 'c2', true), live(2, 0));
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 2, active: 0 } });
        assert.deepEqual(await store.setIdle('u1', 'c2', true), live(2, 0), 'idempotent');
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 2, active: 0 } }, 'idempotent');
        assert.deepEqual(await store.setIdle('u1', 'c1', false), live(2, 1));
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 2, active: 1 } });
        assert.deepEqual(await store.disconnect('u1', 'c1'), live(1, 0));
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 1, active: 0 } }, 'the idle one is left');
        assert.deepEqual(await store.connect('u1', 'c2'), live(1, 1));
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 1, active: 1 } });
        assert.deepEqual(await store.setIdle('u1', 'gone', true), live(1, 1), 'an unknown connection is not added by setIdle');
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 1, active: 1 } });
      }),
    );

    it(
      'entries expire after the TTL unless refreshed; refresh carries the idle flag',
      withStore(async ({ store }, advance) => {
        await store.connect('u1', 'c1');
        await store.connect('u1', 'c2');
        await store.connect('u2', 'd1');
        advance(TTL - 1);
        assert.deepEqual(await counts(store, ['u1', 'u2']), { u1: { connections: 2, active: 2 }, u2: { connections: 1, active: 1 } }, 'alive just before the TTL');
        await store.refresh([{ userId: 'u1', connId: 'c1', idle: true }]);
        await store.refresh([]);
        advance(1);
        assert.deepEqual(await counts(store, ['u1', 'u2']), { u1: { connections: 1, active: 0 }, u2: { connections: 0, active: 0 } }, 'gone at the TTL');
        advance(TTL - 2);
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 1, active: 0 } }, 'the refreshed one lives a TTL from its refresh');
        await store.setIdle('u1', 'c1', false);
        advance(TTL - 1);
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 1, active: 1 } }, 'setIdle refreshes too');
        advance(1);
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 0, active: 0 } });
        assert.deepEqual(await store.connect('u1', 'c3'), live(1), 'an expired connection is not counted by connect');
      }),
    );

    it(
      "a dead node's connections drop out after the TTL while a live node's stay",
      withStore(async ({ store, peer }, advance) => {
        const a = store;
        const b = peer ? await peer() : store;
        await a.connect('u1', 'a1');
        await a.connect('u2', 'a2');
        await b.connect('u1', 'b1');
        await b.setIdle('u1', 'b1', true);
        for (let i = 0; i < 3; i++) {
          // Node a died: only b keeps its heartbeat.
          advance(TTL / 2);
          await b.refresh([{ userId: 'u1', connId: 'b1', idle: true }]);
        }
        assert.deepEqual(await counts(a, ['u1', 'u2']), { u1: { connections: 1, active: 0 }, u2: { connections: 0, active: 0 } });
        assert.deepEqual(await counts(b, ['u1', 'u2']), { u1: { connections: 1, active: 0 }, u2: { connections: 0, active: 0 } });
      }),
    );

    it(
      'concurrent connects and disconnects of one user add up (from two nodes where the store has nodes)',
      withStore(async ({ store, peer }) => {
        const nodes = [store, peer ? await peer() : store];
        const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
        const up = (await Promise.all(ids.map((id, i) => nodes[i % 2]!.connect('u1', id)))).map((c) => c.connections);
        assert.deepEqual(
          up.sort((x, y) => x - y),
          ids.map((_, i) => i + 1),
          'every connect saw its own count',
        );
        for (const node of nodes) assert.deepEqual(await counts(node, ['u1']), { u1: { connections: 20, active: 20 } });
        const down = (await Promise.all(ids.slice(0, 15).map((id, i) => nodes[(i + 1) % 2]!.disconnect('u1', id)))).map((c) => c.connections);
        assert.deepEqual(
          down.sort((x, y) => x - y),
          Array.from({ length: 15 }, (_, i) => 5 + i),
        );
        assert.deepEqual(await counts(store, ['u1']), { u1: { connections: 5, active: 5 } });
      }),
    );

    it('with the real clock: refresh keeps an entry past its first TTL, then it expires', async () => {
      const ttlMs = 600;
      const h = await make({ ttlMs, now: Date.now });
      try {
        await h.store.connect('u1', 'c1');
        await sleep(400);
        await h.store.refresh([{ userId: 'u1', connId: 'c1', idle: false }]);
        await sleep(400);
        assert.deepEqual(await counts(h.store, ['u1']), { u1: { connections: 1, active: 1 } }, 'refreshed, so alive past the first TTL');
        await sleep(ttlMs + 100);
        assert.deepEqual(await counts(h.store, ['u1']), { u1: { connections: 0, active: 0 } });
      } finally {
        await h.close();
      }
    });
  });
}
