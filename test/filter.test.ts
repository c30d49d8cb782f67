import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DbxError } from '../src/core/errors.js';
import {
  FILTER_CHARS_MAX,
  FILTER_DEPTH_MAX,
  compareAggregatesBy,
  compareEventIds,
  compareEventsBy,
  likeToRegExp,
  matchesAggregate,
  matchesEvent,
  mentionsField,
  parseFilter,
  parseSort,
} from '../src/core/filter.js';
import type { AggregateView, EventRecord } from '../src/core/types.js';

function aggregate(overrides: Partial<AggregateView> = {}): AggregateView {
  return {
    aggregate_type: 'order',
    aggregate_id: 'order-1',
    version: 7,
    state: {
      status: 'pending',
      score: 42,
      score_text: '42',
      vip: true,
      nothing: null,
      name: { first: 'John', last: 'Thach' },
      tags: ['a', 'b'],
      items: [{ sku: 'x1', qty: 2 }],
      note: 'line one\nline two',
      'with space': 'odd',
    },
    merkle_root: 'root-abc',
    archived: false,
    created_at: '2024-01-01T00:00:00.000Z',
    updated_at: '2024-06-01T12:00:00.000Z',
    ...overrides,
  };
}

function event(overrides: Partial<EventRecord> = {}): EventRecord {
  return {
    aggregate_type: 'order',
    aggregate_id: 'order-1',
    event_type: 'order_created',
    version: 1,
    payload: { status: 'new', amount: 5, amount_text: '5', nested: { deep: [1, 2, 3] }, shared: 'payload' },
    extensions: { '@trace': { id: 'tr-1' }, shared: 'extensions', flag: null },
    metadata: {
      event_id: '123456789012345678',
      created_at: '2024-01-01T00:00:00.000Z',
      issued_by: { group: 'admins', user: 'alice' },
      note: 'first',
    },
    hash: 'hash-1',
    merkle_root: 'root-1',
    ...overrides,
  };
}

const a = aggregate();
const e = event();
const aggMatch = (filter: string, target: AggregateView = a): boolean => matchesAggregate(parseFilter(filter), target);
const evtMatch = (filter: string, target: EventRecord = e): boolean => matchesEvent(parseFilter(filter), target);

function rejects(source: string, detail: string): void {
  assert.throws(
    () => parseFilter(source),
    (err: unknown) => {
      assert.ok(err instanceof DbxError);
      assert.equal(err.code, 'invalid_input');
      assert.equal(err.message, `invalid filter expression: ${detail}`);
      return true;
    },
    source,
  );
}

function sortRejects(spec: string, kind: 'aggregate' | 'event', message: string): void {
  assert.throws(
    () => parseSort(spec, kind),
    (err: unknown) => {
      assert.ok(err instanceof DbxError);
      assert.equal(err.code, 'invalid_input');
      assert.equal(err.message, message);
      return true;
    },
    spec,
  );
}

// ---------------------------------------------------------------------------------------------
// Lexer and parser

test('filter - lexer errors carry the original messages', () => {
  rejects('', 'filter cannot be empty');
  rejects('   \t\n ', 'filter cannot be empty');
  rejects('a = #', "unexpected character '#'");
  rejects('a = 😀', "unexpected character '😀'");
  rejects('a ! 1', "expected '=' after '!'");
  rejects('a = "abc', 'unterminated string literal');
  rejects("a = 'abc", 'unterminated string literal');
  rejects('a = "abc\\', 'unterminated escape sequence');
  rejects('@x = 1', "unexpected character '@'");
  rejects('a@b = 1', "unexpected character '@'");
});

test('filter - parser errors carry the original messages', () => {
  rejects('= 1', 'expected field name in comparison');
  rejects('"a" = 1', 'expected field name in comparison');
  rejects('a', 'expected comparison operator');
  rejects('a b', 'expected comparison operator');
  rejects('a =', 'unexpected end of filter');
  rejects('a = (', 'invalid value literal');
  rejects('a = AND', 'invalid value literal');
  rejects('(a = 1', "expected ')'");
  rejects('a IN 1', "expected '['");
  rejects('a IN [1 2]', "expected ']'");
  rejects('a IN [1', "expected ']'");
  rejects('a = 1 b = 2', 'unexpected tokens after expression');
  rejects('a = 1)', 'unexpected tokens after expression');
  rejects('a = 1.2.3', 'invalid number: 1.2.3');
  rejects('a = -', 'invalid number: -');
  rejects('a NOT', 'expected comparison operator');
});

test('filter - lexing errors win over parse errors, as the whole input is lexed first', () => {
  rejects('a = 1.2.3 AND #', "unexpected character '#'");
});

test('filter - limits on length and nesting', () => {
  const long = `a = "${'x'.repeat(FILTER_CHARS_MAX)}"`;
  assert.throws(
    () => parseFilter(long),
    (err: unknown) => err instanceof DbxError && err.code === 'validation_failed' && err.message.includes(`filter exceeds ${FILTER_CHARS_MAX} characters`),
  );
  const ok = `${'('.repeat(FILTER_DEPTH_MAX)}a = 1${')'.repeat(FILTER_DEPTH_MAX)}`;
  assert.deepEqual(parseFilter(ok), { kind: 'compare', field: 'a', op: '=', value: 1 });
  const deep = `${'('.repeat(FILTER_DEPTH_MAX + 1)}a = 1${')'.repeat(FILTER_DEPTH_MAX + 1)}`;
  rejects(deep, `nesting deeper than ${FILTER_DEPTH_MAX} levels`);
  rejects(`${'NOT '.repeat(FILTER_DEPTH_MAX + 1)}a = 1`, `nesting deeper than ${FILTER_DEPTH_MAX} levels`);
  assert.equal(parseFilter(`${'NOT '.repeat(FILTER_DEPTH_MAX)}a = 1`).kind, 'not');
});

test('filter - tokens: keywords are case-insensitive, identifiers keep dots, $ and @ after a dot', () => {
  assert.deepEqual(parseFilter('payload.status = true'), {
    kind: 'compare',
    field: 'payload.status',
    op: '=',
    value: true,
  });
  assert.deepEqual(parseFilter('a = 1 and b = 2 Or NOT c = Null'), {
    kind: 'or',
    items: [
      {
        kind: 'and',
        items: [
          { kind: 'compare', field: 'a', op: '=', value: 1 },
          { kind: 'compare', field: 'b', op: '=', value: 2 },
        ],
      },
      { kind: 'not', expr: { kind: 'compare', field: 'c', op: '=', value: null } },
    ],
  });
  assert.deepEqual(parseFilter('$x_1.y$ = FALSE'), { kind: 'compare', field: '$x_1.y$', op: '=', value: false });
  assert.equal((parseFilter('extensions.@trace.id = "t"') as { field: string }).field, 'extensions.@trace.id');
});

test('filter - values: strings with escapes, numbers, bare identifiers as strings', () => {
  const value = (src: string): unknown => (parseFilter(`a = ${src}`) as { value: unknown }).value;
  assert.equal(value('"say \\"hi\\""'), 'say "hi"');
  assert.equal(value("'it\\'s'"), "it's");
  assert.equal(value('"a\\nb"'), 'anb', 'a backslash takes the next character verbatim');
  assert.equal(value('"中文 ✓"'), '中文 ✓');
  assert.equal(value('-12.5'), -12.5);
  assert.equal(value('0'), 0);
  assert.equal(value('1.'), 1);
  assert.equal(value('pending'), 'pending');
  assert.equal(value('a.b'), 'a.b');
});

test('filter - operators: = != > < >= <= parse with or without spaces', () => {
  for (const op of ['=', '!=', '>', '<', '>=', '<='] as const) {
    assert.deepEqual(parseFilter(`a${op}1`), { kind: 'compare', field: 'a', op, value: 1 });
    assert.deepEqual(parseFilter(`a ${op} 1`), { kind: 'compare', field: 'a', op, value: 1 });
  }
});

test('filter - AND binds tighter than OR; parentheses override; chains flatten', () => {
  assert.deepEqual(parseFilter('a = 1 OR b = 2 AND c = 3'), {
    kind: 'or',
    items: [
      { kind: 'compare', field: 'a', op: '=', value: 1 },
      {
        kind: 'and',
        items: [
          { kind: 'compare', field: 'b', op: '=', value: 2 },
          { kind: 'compare', field: 'c', op: '=', value: 3 },
        ],
      },
    ],
  });
  const grouped = parseFilter('(a = 1 OR b = 2) AND c = 3');
  assert.equal(grouped.kind, 'and');
  const flat = parseFilter('a = 1 OR (b = 2 OR c = 3) OR d = 4');
  assert.equal(flat.kind, 'or');
  assert.equal(flat.kind === 'or' && flat.items.length, 4);
  // Semantics of precedence on data: true OR (false AND false) = true; (true OR false) AND false = false.
  assert.equal(aggMatch('status = "pending" OR score = 1 AND vip = false'), true);
  assert.equal(aggMatch('(status = "pending" OR score = 1) AND vip = false'), false);
});

test('filter - NOT prefix and NOT inside a comparison', () => {
  assert.deepEqual(parseFilter('status NOT IN [a, b]'), {
    kind: 'not',
    expr: { kind: 'in', field: 'status', values: ['a', 'b'] },
  });
  assert.equal(aggMatch('NOT status = "pending"'), false);
  assert.equal(aggMatch('NOT NOT status = "pending"'), true);
  assert.equal(aggMatch('status NOT = "shipped"'), true);
  assert.equal(aggMatch('status NOT LIKE "pend%"'), false);
  assert.equal(aggMatch('NOT (status = "pending" AND vip = true)'), false);
  assert.equal(aggMatch('NOT status = "x" AND vip = true'), true, 'NOT binds tighter than AND');
});

test('filter - IN lists: empty, trailing comma, mixed types', () => {
  assert.deepEqual(parseFilter('a IN []'), { kind: 'in', field: 'a', values: [] });
  assert.deepEqual(parseFilter('a IN [1, "x", true, null, y,]'), {
    kind: 'in',
    field: 'a',
    values: [1, 'x', true, null, 'y'],
  });
  assert.equal(aggMatch('status IN ["shipped", "pending"]'), true);
  assert.equal(aggMatch('status IN []'), false);
  assert.equal(aggMatch('score IN [41, 42]'), true);
  assert.equal(aggMatch('score IN ["42"]'), false, 'a number never equals a string');
  assert.equal(aggMatch('nothing IN [null]'), true);
  assert.equal(aggMatch('vip in [TRUE]'), true);
});

// ---------------------------------------------------------------------------------------------
// Evaluation

test('filter - typed state values: no string normalisation', () => {
  assert.equal(aggMatch('score = 42'), true);
  assert.equal(aggMatch('score = "42"'), false);
  assert.equal(aggMatch('score_text = "42"'), true);
  // Issue 14 item 2 (reference §7.3): a stored numeric string compares as a number with a number literal.
  assert.equal(aggMatch('score_text = 42'), true);
  assert.equal(aggMatch('score_text > 40'), true, 'a numeric string orders as its number');
  assert.equal(aggMatch('score > 40 AND score < 43 AND score >= 42 AND score <= 42'), true);
  assert.equal(aggMatch('score > 42 OR score < 42'), false);
  assert.equal(aggMatch('vip = true AND vip != false'), true);
  assert.equal(aggMatch('vip = "true"'), false);
  assert.equal(aggMatch('nothing = null'), true);
  assert.equal(aggMatch('nothing != null'), false);
  assert.equal(aggMatch('status > 1 OR status < 1 OR status >= "a"'), false);
  assert.equal(aggMatch('score = 42.0'), true);
  assert.equal(aggMatch('score = 42.0000001'), false);
});

test('filter - objects and arrays equal nothing but are present', () => {
  assert.equal(aggMatch('name = "John"'), false);
  assert.equal(aggMatch('name != "John"'), true);
  assert.equal(aggMatch('name != null'), true);
  assert.equal(aggMatch('name = null'), false);
  assert.equal(aggMatch('tags LIKE "%"'), false);
});

test('filter - dot paths into state: keys, array indices, explicit state. prefix', () => {
  assert.equal(aggMatch('name.first = "John"'), true);
  assert.equal(aggMatch('state.name.first = "John"'), true);
  assert.equal(aggMatch('tags.1 = "b"'), true);
  assert.equal(aggMatch('items.0.qty = 2'), true);
  assert.equal(aggMatch('items.0.qty >= 2'), true);
  assert.equal(aggMatch('tags.5 = "b"'), false);
  assert.equal(aggMatch('tags.x = "b"'), false);
  assert.equal(aggMatch('name..first = "John"'), false, 'empty segment is missing');
  assert.equal(aggMatch('name.first.x = "John"'), false, 'indexing a scalar is missing');
  assert.equal(aggMatch('constructor != null'), true, 'prototype keys are missing, not found');
  assert.equal(aggMatch('constructor = null'), false);
});

test('filter - missing fields: only != null is true; NOT inverts', () => {
  for (const [filter, expected] of [
    ['ghost != null', true],
    ['ghost = null', false],
    ['ghost != "a"', false],
    ['ghost = "a"', false],
    ['ghost > 1', false],
    ['ghost < 1', false],
    ['ghost >= 1', false],
    ['ghost <= 1', false],
    ['ghost IN [null]', false],
    ['ghost LIKE "%"', false],
    ['NOT ghost = "a"', true],
    ['ghost NOT = "a"', true],
    ['NOT ghost != null', false],
    ['ghost NOT IN ["a"]', true],
  ] as const) {
    assert.equal(aggMatch(filter), expected, filter);
  }
});

test('filter - aggregate fields and camelCase aliases', () => {
  assert.equal(aggMatch('aggregate_type = order AND aggregateType = order'), true);
  assert.equal(aggMatch('aggregate_id = "order-1" AND aggregateId = "order-1"'), true);
  assert.equal(aggMatch('merkle_root = "root-abc" AND merkleRoot = "root-abc"'), true);
  assert.equal(aggMatch('version = 7 AND version >= 7 AND version < 8'), true);
  assert.equal(aggMatch('archived = false'), true);
  assert.equal(aggMatch('archived = true', aggregate({ archived: true })), true);
  const created = Date.parse('2024-01-01T00:00:00.000Z');
  assert.equal(aggMatch(`created_at = ${created} AND createdAt = ${created}`), true);
  assert.equal(aggMatch(`updated_at > ${created} AND updatedAt > ${created}`), true);
  assert.equal(aggMatch('created_at = "2024-01-01T00:00:00.000Z"'), true, 'timestamps compare as times, ISO 8601 or epoch ms');
  assert.equal(aggMatch('created_at = null', aggregate({ created_at: '' })), true, 'unset timestamp is null');
  // Built-in names win over a state key of the same name.
  assert.equal(aggMatch('version = 1', aggregate({ state: { version: 1 } })), false);
  assert.equal(aggMatch('state.version = 1', aggregate({ state: { version: 1 } })), true);
});

test('filter - LIKE: % * _ ? wildcards, anchored, case-sensitive, metacharacters literal', () => {
  assert.equal(aggMatch('status LIKE "pend%"'), true);
  assert.equal(aggMatch('status LIKE "pend*"'), true);
  assert.equal(aggMatch('status LIKE "%end%"'), true);
  assert.equal(aggMatch('status LIKE "pendin_"'), true);
  assert.equal(aggMatch('status LIKE "pendin?"'), true);
  assert.equal(aggMatch('status LIKE "pend"'), false, 'anchored at the end');
  assert.equal(aggMatch('status LIKE "end%"'), false, 'anchored at the start');
  assert.equal(aggMatch('status LIKE "PEND%"'), false, 'case-sensitive');
  assert.equal(aggMatch('status LIKE "pendin__"'), false);
  assert.equal(aggMatch('score LIKE "4%"'), false, 'strings only');
  assert.equal(aggMatch('status LIKE 1'), false, 'pattern must be a string');
  assert.equal(aggMatch('note LIKE "line%two"'), true, '% spans line breaks');
  const special = aggregate({ state: { s: 'a.b+c(d)|e^f$g{h}[i]\\j' } });
  assert.equal(aggMatch('s LIKE "a.b+c(d)|e^f$g{h}[i]\\\\j"', special), true);
  assert.equal(aggMatch('s LIKE "a_b+c(d)|e^f$g{h}[i]\\\\j"', special), true);
  assert.equal(aggMatch('s LIKE "aXb%"', special), false, 'a dot is literal');
  assert.equal(likeToRegExp('😀_').test('😀😀'), true, '_ matches one whole character');
  assert.equal(likeToRegExp('a%').source, '^a.*$');
});

test('filter - a LIKE pattern is compiled once per parsed node and reused', () => {
  const expr = parseFilter('status LIKE "p%"');
  const many = Array.from({ length: 100 }, (_, i) => aggregate({ state: { status: i % 2 ? 'pa' : 'qa' } }));
  assert.equal(many.filter((item) => matchesAggregate(expr, item)).length, 50);
  // A structurally cloned AST (as after postMessage) still works.
  assert.equal(matchesAggregate(structuredClone(expr), a), true);
});

test('filter - event fields, aliases and metadata', () => {
  assert.equal(evtMatch('aggregate_type = order AND aggregateType = order'), true);
  assert.equal(evtMatch('aggregate_id = "order-1" AND aggregateId = "order-1"'), true);
  assert.equal(evtMatch('event_type = order_created AND eventType = order_created'), true);
  assert.equal(evtMatch('version = 1'), true);
  assert.equal(evtMatch('event_id = "123456789012345678" AND eventId = "123456789012345678"'), true);
  assert.equal(evtMatch('event_id = 123456789012345678'), true, 'event ids compare as numbers, exactly beyond 2^53');
  assert.equal(evtMatch('event_id = 123456789012345679'), false);
  const created = Date.parse('2024-01-01T00:00:00.000Z');
  assert.equal(evtMatch(`created_at = ${created} AND createdAt >= ${created}`), true);
  assert.equal(evtMatch('merkle_root = "root-1" AND hash = "hash-1" AND note = first'), true);
  assert.equal(evtMatch('metadata.note = first AND metadata.event_id = "123456789012345678"'), true);
  assert.equal(evtMatch(`metadata.created_at = ${created} AND metadata.createdAt = ${created}`), true);
  assert.equal(evtMatch('metadata.issued_by.group = admins AND metadata.issued_by.user = alice'), true);
  assert.equal(evtMatch('metadata.issuedBy.group = admins AND metadata.issuedBy.User = alice'), true);
  assert.equal(evtMatch('metadata.issued_by.role != null'), true, 'unknown metadata is missing');
  assert.equal(evtMatch('metadata.bogus = null'), false);
});

test('filter - event notes and issuers are missing when unset', () => {
  const bare = event({ metadata: { event_id: '1', created_at: '2024-01-01T00:00:00Z', issued_by: null } });
  assert.equal(evtMatch('note = null', bare), false);
  assert.equal(evtMatch('note != null', bare), true);
  assert.equal(evtMatch('metadata.issued_by.group = admins', bare), false);
  assert.equal(evtMatch('issued_by.group != null', bare), true);
});

test('filter - event payload and extensions paths keep JSON types', () => {
  assert.equal(evtMatch('payload.status = new'), true);
  assert.equal(evtMatch('payload.amount = 5 AND payload.amount > 4'), true);
  assert.equal(evtMatch('payload.amount_text = 5'), true, 'a numeric string equals its number');
  assert.equal(evtMatch('payload.amount_text = "5"'), true);
  assert.equal(evtMatch('payload.nested.deep.2 = 3'), true);
  assert.equal(evtMatch('extensions.@trace.id = "tr-1"'), true);
  assert.equal(evtMatch('extensions.flag = null'), true);
  assert.equal(evtMatch('payload.ghost != null AND NOT payload.ghost = null'), true);
  const patch = event({ payload: [{ op: 'add', path: '/a', value: 1 }] });
  assert.equal(evtMatch('payload.0.op = add', patch), true);
});

test('filter - bare event names try metadata, then extensions, then payload', () => {
  assert.equal(evtMatch('shared = extensions'), true, 'extensions before payload');
  assert.equal(evtMatch('status = new'), true, 'payload when nowhere else');
  assert.equal(evtMatch('issued_by.user = alice'), true, 'metadata first');
  assert.equal(evtMatch('issuedBy.group = admins'), true);
  assert.equal(evtMatch('flag = null'), true, 'a stored null in extensions counts as found');
  const shadow = event({ extensions: { status: 'from-ext' } });
  assert.equal(evtMatch('status = "from-ext"', shadow), true);
  assert.equal(evtMatch('payload.status = new', shadow), true);
  assert.equal(evtMatch('nowhere != null'), true);
  assert.equal(evtMatch('nowhere = null'), false);
});

test('filter - mentionsField is case-insensitive and sees through NOT, AND, OR', () => {
  assert.equal(mentionsField(parseFilter('ARCHIVED = true'), 'archived'), true);
  assert.equal(mentionsField(parseFilter('a = 1 OR (b = 2 AND NOT Archived = false)'), 'archived'), true);
  assert.equal(mentionsField(parseFilter('status NOT IN [archived]'), 'archived'), false, 'values do not count');
  assert.equal(mentionsField(parseFilter('state.archived = true'), 'archived'), false);
  assert.equal(mentionsField(parseFilter('x LIKE "a%"'), 'X'), true);
});

test('filter - the AST is plain data (JSON round trip keeps behaviour)', () => {
  const expr = parseFilter('(status = pending OR score >= 50) AND NOT tags.0 IN [z] AND name.first LIKE "J%"');
  const copy = JSON.parse(JSON.stringify(expr)) as typeof expr;
  assert.deepEqual(copy, expr);
  assert.equal(matchesAggregate(copy, a), true);
});

// ---------------------------------------------------------------------------------------------
// Sorting

test('sort - parsing: defaults, case, aliases, canonical names', () => {
  assert.deepEqual(parseSort('version', 'aggregate'), [{ field: 'version', descending: false }]);
  assert.deepEqual(parseSort(' AggregateType : DESC , aggregate_id:asc ', 'aggregate'), [
    { field: 'aggregate_type', descending: true },
    { field: 'aggregate_id', descending: false },
  ]);
  assert.deepEqual(parseSort('merkleroot,archived:Desc,createdat,updated_at:desc', 'aggregate'), [
    { field: 'merkle_root', descending: false },
    { field: 'archived', descending: true },
    { field: 'created_at', descending: false },
    { field: 'updated_at', descending: true },
  ]);
  assert.deepEqual(parseSort('event_type,created_at:desc,event_id,hash,aggregateid', 'event'), [
    { field: 'event_type', descending: false },
    { field: 'created_at', descending: true },
    { field: 'event_id', descending: false },
    { field: 'hash', descending: false },
    { field: 'aggregate_id', descending: false },
  ]);
});

test('sort - parsing errors carry the original messages', () => {
  sortRejects('', 'aggregate', 'sort specification cannot be empty');
  sortRejects('  ', 'event', 'sort specification cannot be empty');
  sortRejects('version,,aggregate_id', 'aggregate', 'sort segments cannot be empty');
  sortRejects('version,', 'aggregate', 'sort segments cannot be empty');
  sortRejects(':asc', 'aggregate', 'sort field cannot be empty');
  sortRejects('version:asc:x', 'aggregate', "sort specification contains too many ':' separators");
  sortRejects('version:up', 'aggregate', "invalid sort order 'up' (expected 'asc' or 'desc')");
  sortRejects('version:', 'aggregate', "invalid sort order '' (expected 'asc' or 'desc')");
  sortRejects('version:UP:x', 'aggregate', "invalid sort order 'up' (expected 'asc' or 'desc')");
  sortRejects('score', 'aggregate', "unsupported aggregate sort field 'score'");
  sortRejects('event_type', 'aggregate', "unsupported aggregate sort field 'event_type'");
  sortRejects('Bogus:asc:x', 'event', "unsupported event sort field 'Bogus'");
  sortRejects('archived', 'event', "unsupported event sort field 'archived'");
  sortRejects('x'.repeat(2000), 'event', 'sort specification exceeds 1024 characters');
});

test('sort - aggregate comparator: keys in order, desc, archived false < true, natural tie-break', () => {
  const items = [
    aggregate({ aggregate_id: 'b', version: 2, archived: true, updated_at: '2024-03-01T00:00:00Z' }),
    aggregate({ aggregate_id: 'a', version: 2, archived: false, updated_at: '2024-01-01T00:00:00Z' }),
    aggregate({ aggregate_id: 'c', version: 5, archived: false, updated_at: '2024-02-01T00:00:00+01:00' }),
    aggregate({ aggregate_type: 'account', aggregate_id: 'z', version: 1, archived: true, updated_at: 'bad' }),
  ];
  const ids = (keys: string): string[] =>
    [...items].sort(compareAggregatesBy(parseSort(keys, 'aggregate'))).map((x) => x.aggregate_id);
  assert.deepEqual(ids('version'), ['z', 'a', 'b', 'c']);
  assert.deepEqual(ids('version:desc'), ['c', 'a', 'b', 'z'], 'ties keep natural ascending order');
  assert.deepEqual(ids('archived,version:desc'), ['c', 'a', 'b', 'z']);
  assert.deepEqual(ids('archived:desc,aggregate_id'), ['b', 'z', 'a', 'c']);
  assert.deepEqual(ids('aggregate_type,aggregate_id:desc'), ['z', 'c', 'b', 'a']);
  assert.deepEqual(ids('updated_at'), ['z', 'a', 'c', 'b'], 'by time, unparsable first');
  assert.deepEqual(ids('updated_at:desc'), ['b', 'c', 'a', 'z']);
  assert.deepEqual([...items].sort(compareAggregatesBy([])).map((x) => x.aggregate_id), ['z', 'a', 'b', 'c']);
  assert.equal(compareAggregatesBy([])(items[0]!, items[0]!), 0);
});

test('sort - comparators reject keys that parseSort would not produce', () => {
  assert.throws(() => compareAggregatesBy([{ field: 'score', descending: false }]), DbxError);
  assert.throws(() => compareEventsBy([{ field: 'archived', descending: false }]), DbxError);
  assert.throws(() => compareEventsBy([{ field: 'toString', descending: false }]), DbxError);
});

test('sort - event ids compare numerically, not as text', () => {
  assert.equal(compareEventIds('9', '10'), -1);
  assert.equal(compareEventIds('10', '9'), 1);
  assert.equal(compareEventIds('123', '123'), 0);
  assert.equal(compareEventIds('0009', '10'), -1);
  assert.equal(compareEventIds('18446744073709551615', '18446744073709551614'), 1);
  assert.equal(compareEventIds('abc', '1'), 1, 'malformed ids sort after numeric ones');
  const samples = ['5', '40', '300', '7205759403792793', '7205759403792794', '18446744073709551615', '1000'];
  const expected = [...samples].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : BigInt(x) > BigInt(y) ? 1 : 0));
  assert.deepEqual([...samples].sort(compareEventIds), expected);
});

test('sort - event comparator: event_id, created_at by time, multi-key', () => {
  const mk = (id: string, created: string, type: string, version: number): EventRecord =>
    event({
      event_type: type,
      version,
      metadata: { event_id: id, created_at: created, issued_by: null },
    });
  const items = [
    mk('100', '2024-01-01T00:00:01Z', 'b', 3),
    mk('20', '2024-01-01T00:00:00.500Z', 'a', 2),
    mk('3', '2024-01-01T01:00:00+02:00', 'b', 1),
  ];
  const ids = (keys: string): string[] =>
    [...items].sort(compareEventsBy(parseSort(keys, 'event'))).map((x) => x.metadata.event_id);
  assert.deepEqual(ids('event_id'), ['3', '20', '100']);
  assert.deepEqual(ids('eventid:desc'), ['100', '20', '3']);
  // 01:00+02:00 is 23:00 the day before: earliest in time though latest as text.
  assert.deepEqual(ids('created_at'), ['3', '20', '100']);
  assert.deepEqual(ids('event_type:desc,version'), ['3', '100', '20']);
  assert.deepEqual(ids('hash'), ['3', '20', '100'], 'equal hashes fall back to natural order (version)');
});

test('filter - numbers are equal within f64::EPSILON (the original); an event id literal longer than any id still orders', () => {
  const sum = event({ payload: { x: 0.1 + 0.2, text: '0.30000000000000004' } });
  assert.equal(evtMatch('x = 0.3', sum), true, '0.1 + 0.2 = 0.3');
  assert.equal(evtMatch('x IN [0.3]', sum), true);
  assert.equal(evtMatch('x != 0.3', sum), false);
  assert.equal(evtMatch('text = 0.3', sum), true, 'a numeric string too');
  assert.equal(evtMatch('x = 0.3000001', sum), false, 'beyond epsilon: different');
  assert.equal(evtMatch('event_id < 100000000000000000000'), true, '21 digits: above every id');
  assert.equal(evtMatch('event_id > 100000000000000000000'), false);
  assert.equal(evtMatch('event_id != 100000000000000000000'), true);
  assert.equal(evtMatch('event_id < 99999999999999999999'), true);
});
