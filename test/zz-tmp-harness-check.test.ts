import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
test('tmp fails', () => { assert.equal(1, 2); });
test('tmp slow', async () => { await sleep(Number(process.env.TMP_SLEEP ?? 0)); });
