import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventBus } from './event-bus.ts';

/** A fresh bus, and a second node's bus on the same broker when the implementation has nodes. */
export interface BusFactory {
  make(): Promise<EventBus>;
  /** Another node on the same broker (null for single-node implementations). */
  makePeer: ((first: EventBus) => Promise<EventBus>) | null;
}

const settle = () => new Promise((r) => setTimeout(r, 50));

/** One suite for every EventBus (Centrifuge mapBrokerFactory). */
export function eventBusContract(name: string, f: BusFactory): void {
  describe(`EventBus contract: ${name}`, () => {
    it('delivers to local subscribers synchronously, in order, once', async () => {
      const bus = await f.make();
      try {
        const got: string[] = [];
        await bus.subscribe('t', (p) => got.push(p));
        await bus.publish('t', 'a');
        await bus.publish('t', 'b');
        await bus.publish('other', 'x');
        assert.deepEqual(got, ['a', 'b']);
        await settle();
        assert.deepEqual(got, ['a', 'b'], 'no echo comes back from the broker');
      } finally {
        await bus.close();
      }
    });

    it('unsubscribe stops delivery; a throwing handler does not stop the others', async () => {
      const bus = await f.make();
      try {
        const got: string[] = [];
        const off = await bus.subscribe('t', (p) => got.push(`1:${p}`));
        await bus.subscribe('t', () => {
          throw new Error('boom');
        });
        await bus.subscribe('t', (p) => got.push(`3:${p}`));
        await bus.publish('t', 'a');
        await off();
        await bus.publish('t', 'b');
        assert.deepEqual(got, ['1:a', '3:a', '3:b']);
      } finally {
        await bus.close();
      }
    });

    it('hasListeners says "nobody" only when no subscriber anywhere could hear the topic', async () => {
      const bus = await f.make();
      try {
        if (f.makePeer) {
          // Subscribers of other nodes are unknown here: a bus with nodes must not claim there are none.
          assert.equal(bus.hasListeners, undefined);
          return;
        }
        assert.equal(bus.hasListeners?.('t'), false);
        const off = await bus.subscribe('t', () => undefined);
        assert.equal(bus.hasListeners?.('t'), true);
        assert.equal(bus.hasListeners?.('other'), false);
        await off();
        assert.equal(bus.hasListeners?.('t'), false);
      } finally {
        await bus.close();
      }
    });

    if (f.makePeer) {
      const makePeer = f.makePeer;
      it('delivers to subscribers on another node', async () => {
        const a = await f.make();
        const b = await makePeer(a);
        try {
          const got: string[] = [];
          await b.subscribe('room', (p) => got.push(p));
          for (let i = 0; i < 20; i++) await a.publish('room', `m${i}`);
          for (let i = 0; i < 50 && got.length < 20; i++) await settle();
          assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `m${i}`));
        } finally {
          await a.close();
          await b.close();
        }
      });
    }
  });
}
