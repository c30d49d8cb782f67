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
