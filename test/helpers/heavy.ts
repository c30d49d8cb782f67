/**
 * Opt-in heavy runs: `npm run test:heavy` sets EDBX_HEAVY=1, and the tests that read it run their
 * full-size load (more requests, bigger documents, more rounds). `npm test` runs the same checks at
 * a size that still shows the property (each test says why its small size suffices).
 */
export const HEAVY = process.env.EDBX_HEAVY === '1';

/** `small` in `npm test`, `full` under `npm run test:heavy`. */
export function heavy<T>(small: T, full: T): T {
  return HEAVY ? full : small;
}
