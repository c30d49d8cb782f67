/**
 * Findings of the seventh review (2026-12-05), each a test that fails if it comes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

const server = useServer();

// Reference §7: an empty filter is refused ("filter cannot be empty"), whether empty or blank; a
// `?filter=` with nothing in it used to list everything as if no filter had been given.
test('an empty ?filter= is refused like a blank one, on every route that takes a filter', async () => {
  const created = await server.request('POST', '/v1/aggregates/order/o-1', { event_type: 'order_created', payload: { n: 1 } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const paths = ['/v1/aggregates', '/v1/aggregates/order', '/v1/aggregates/order/o-1/events', '/v1/events', '/v1/stream'];
  for (const path of paths) {
    for (const filter of ['', '%20%20']) {
      const res = await server.request('GET', `${path}?filter=${filter}`);
      assertError(res, 400, 'invalid_input');
      assert.match(res.body.error.message, /filter cannot be empty/, `${path}?filter=${filter}`);
    }
    const none = await server.request('GET', path);
    assert.equal(none.status, 200, `${path} without a filter: ${JSON.stringify(none.body)}`);
  }
});
