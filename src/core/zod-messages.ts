/**
 * Our wording for what zod checks, installed once as zod's global error map: no answer carries a
 * library's own message ("Too big: expected int to be <=9007199254740991"). A schema that gives its
 * own message keeps it (zod prefers it to this map).
 */
import { z } from 'zod';

type Issue = z.core.$ZodRawIssue;

const KIND: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
  undefined: 'absent',
  bigint: 'an integer',
  date: 'a date',
};

function what(expected: unknown): string {
  return typeof expected === 'string' ? (KIND[expected] ?? expected) : 'another type';
}

function received(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'number') return Number.isInteger(input) ? 'an integer' : 'a number';
  return KIND[typeof input] ?? typeof input;
}

function sized(origin: unknown, bound: unknown, most: boolean, inclusive: unknown): string {
  const n = String(bound);
  const edge = inclusive === false ? (most ? 'less than' : 'more than') : most ? 'at most' : 'at least';
  if (origin === 'string') return `must be ${edge} ${n} characters long`;
  if (origin === 'array' || origin === 'set') return `must have ${edge} ${n} items`;
  if (origin === 'object' || origin === 'record') return `must have ${edge} ${n} fields`;
  if (origin === 'file') return `must be ${edge} ${n} bytes`;
  return `must be ${edge} ${n}`;
}

export function describeIssue(issue: Issue): string {
  const i = issue as Issue & Record<string, unknown>;
  switch (issue.code) {
    case 'invalid_type':
      return i.input === undefined ? `is required (${what(i.expected)})` : `must be ${what(i.expected)}, not ${received(i.input)}`;
    case 'invalid_value': {
      const values = (i.values as unknown[] | undefined) ?? [];
      return values.length === 1 ? `must be ${JSON.stringify(values[0])}` : `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    case 'too_big':
      return sized(i.origin, i.maximum, true, i.inclusive);
    case 'too_small':
      return sized(i.origin, i.minimum, false, i.inclusive);
    case 'invalid_format':
      return i.format === 'regex' ? 'does not have the expected form' : `must be a valid ${String(i.format)}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(i.divisor)}`;
    case 'unrecognized_keys': {
      const keys = (i.keys as string[] | undefined) ?? [];
      return `${keys.length > 1 ? 'unknown fields' : 'unknown field'} ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
    }
    case 'invalid_key':
      return 'has a key that is not accepted';
    case 'invalid_union':
      return 'does not match any accepted form';
    case 'invalid_element':
      return 'has an element that is not accepted';
    default:
      return 'is not valid';
  }
}

let installed = false;

/** Installs the map (idempotent; validation.ts does it when first loaded). */
export function installZodMessages(): void {
  if (installed) return;
  installed = true;
  z.config({ customError: (issue) => describeIssue(issue) });
}
