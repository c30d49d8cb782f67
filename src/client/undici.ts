/**
 * undici, loaded on first use (a command that sends no request never pays for it). In the CLI's
 * bundle (scripts/bundle-cli.mjs) undici is a CommonJS module split into its own chunk, and a
 * dynamic import of it offers its exports on `default` only; compiled, they are named exports.
 */
export type Undici = typeof import('undici');

export async function loadUndici(): Promise<Undici> {
  const loaded = (await import('undici')) as Undici & { default?: Undici };
  return typeof loaded.Pool === 'function' ? loaded : (loaded.default as Undici);
}
