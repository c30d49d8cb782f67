/** Contract details: default page size of an aggregate's events, event time = the id's time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { snowflakeTime } from '../src/core/index.js';
import { useServer } from './helpers/server.js';

const server = useServer();

test('contracts - an aggregate\'s events page defaults to list_page_size (10) with a cursor to the rest', { timeout: 20_000 }, async () => {
  for (let i = 0; i < 13; i++) assert.equal((await server.request('POST', '/v1/aggregates/tally/t-1/events', { event_type: 'counted', payload: { i } })).status, 201);
  const first = await server.request('GET', '/v1/aggregates/tally/t-1/events');
  assert.equal(first.body.items.length, 10);
  assert.equal(first.body.next_cursor, 'a:tally:t-1:10');
  const rest = await server.request('GET', `/v1/aggregates/tally/t-1/events?cursor=${first.body.next_cursor}`);
  assert.deepEqual(rest.body.items.map((e: { version: number }) => e.version), [11, 12, 13]);
  assert.equal(rest.body.next_cursor, null);
});

test('contracts - created_at is the millisecond inside the event id', { timeout: 20_000 }, async () => {
  for (let i = 0; i < 20; i++) {
    const res = await server.request('POST', '/v1/aggregates/clock/c-1/events', { event_type: 'ticked', payload: {} });
    assert.equal(Date.parse(res.body.metadata.created_at), snowflakeTime(res.body.metadata.event_id));
  }
});
