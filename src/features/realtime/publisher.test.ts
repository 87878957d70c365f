import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryEventBus } from '../../bus/memory-event-bus.ts';
import { envelope, parseFrame, RealtimePublisher } from './publisher.ts';

describe('realtime envelope', () => {
  it('has the keys of DESIGN.md in order, and leaves out channel_id, seq and id when not given', () => {
    const at = '2026-11-22T18:00:00.000Z';
    assert.equal(envelope('pong', {}, at), `{"type":"pong","payload":{},"timestamp":"${at}"}`);
    assert.equal(
      envelope('message', { body: 'hi' }, at, 'c1', 7, 'r1'),
      `{"type":"message","channel_id":"c1","payload":{"body":"hi"},"timestamp":"${at}","seq":7,"id":"r1"}`,
    );
    assert.equal(envelope('ack', { ok: true }, at, undefined, undefined, 'r2'), `{"type":"ack","payload":{"ok":true},"timestamp":"${at}","id":"r2"}`);
    assert.equal(envelope('pin', null, at, 'c1', 0), `{"type":"pin","channel_id":"c1","payload":null,"timestamp":"${at}","seq":0}`);
  });

  it("the publisher stamps each event with its clock's time, also when the clock moves by a millisecond", async () => {
    let now = Date.parse('2026-11-22T18:00:00.000Z');
    const bus = new MemoryEventBus();
    const got: string[] = [];
    await bus.subscribe('org:o1', (frame) => got.push(parseFrame(frame).json));
    const publisher = new RealtimePublisher(bus, { now: () => now });
    publisher.toOrg('o1', 'presence', { user_id: 'u1', status: 'online' });
    publisher.toOrg('o1', 'presence', { user_id: 'u1', status: 'away' });
    now += 1;
    publisher.toOrg('o1', 'presence', { user_id: 'u1', status: 'online' });
    now -= 60_000;
    publisher.toOrg('o1', 'presence', { user_id: 'u1', status: 'offline' });
    assert.deepEqual(
      got.map((j) => (JSON.parse(j) as { timestamp: string }).timestamp),
      ['2026-11-22T18:00:00.000Z', '2026-11-22T18:00:00.000Z', '2026-11-22T18:00:00.001Z', '2026-11-22T17:59:00.001Z'],
    );
  });
});
