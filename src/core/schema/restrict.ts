/**
 * Restriction modes (reference §6.3) with the original's aliases, case-insensitive. Unlike the
 * original, `off` really skips validation (its README promises it; its code validates anyway).
 */
import { DbxError } from '../errors.js';
import type { RestrictMode, Violation } from './api.js';

const ALIASES: Readonly<Record<string, RestrictMode>> = {
  off: 'off',
  false: 'off',
  '0': 'off',
  no: 'off',
  none: 'off',
  unrestricted: 'off',
  dev: 'off',
  strict: 'strict',
  all: 'strict',
  enforced: 'strict',
  default: 'default',
  true: 'default',
  '1': 'default',
  yes: 'default',
  on: 'default',
  prod: 'default',
  restricted: 'default',
  hybrid: 'default',
};

/** Every spelling accepted, for help texts and error messages. */
export const RESTRICT_MODE_ALIASES: readonly string[] = Object.keys(ALIASES);

/** `"Prod"` → `'default'`; unknown text throws invalid_input naming the accepted spellings. */
export function parseRestrictMode(text: string): RestrictMode {
  const mode = ALIASES[text.trim().toLowerCase()];
  if (mode !== undefined) return mode;
  throw new DbxError(
    'invalid_input',
    `invalid restrict mode '${text}': use off, default or strict (aliases: off|false|0|no|none|unrestricted|dev, default|true|1|yes|on|prod|restricted|hybrid, strict|all|enforced)`,
  );
}

/** The violation strict mode reports for a write to an aggregate type without a schema. */
export function schemaRequiredViolation(aggregate: string): Violation {
  return {
    field: '',
    rule: 'schema_required',
    message: `aggregate ${aggregate} requires a schema before events can be appended when restrict=strict`,
  };
}
