/**
 * A wait with a hard deadline whose timer is cleared as soon as the wait settles. A bare
 * `Promise.race([p, new Promise((r) => setTimeout(r, 30_000))])` leaves its timer armed after `p`
 * wins, and node --test cannot end a file's process until every timer has fired: a 30 s deadline
 * met in 2 s still held the file open for the other 28 s.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 20 ms until it holds; throws naming `what` once `ms` have passed. */
export async function until(ms: number, check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}
