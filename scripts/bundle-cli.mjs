#!/usr/bin/env node
/**
 * Bundles the compiled CLI (dist/src/cli/launch.js and everything it imports: commander, the
 * client and undici, core and zod, the read-only engine) into dist/src/bin/ with esbuild — a few
 * minified files split at every dynamic import, so `dbx <command>` still loads only its command
 * group. Why: Node 20 resolves, reads and links each ES module on its own (~1 ms each, and it has
 * no compile cache), and a direct read loaded ~250 of them; see main.ts for how the bundle is chosen.
 *
 * Left out, and loaded from dist/src as compiled: the server (`coordinator/index.js`: fastify,
 * pino, piscina, the shard and plugin workers, which find their files by path) and lmdb (a
 * native addon). `new URL('<relative>', import.meta.url)` in a bundled module is rewritten for the
 * bundle's folder, so a bundled module finds package.json and main.js where the compiled one did.
 *
 * Run by `npm run build` after `tsc -b`; up to date (newer than dist/.tsbuildinfo and this
 * script) it does nothing, so a build while `dbx` processes run never rewrites files under them.
 */
import { readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'dist', 'src');
const outdir = join(src, 'bin');
const entry = join(src, 'cli', 'launch.js');
const server = join(src, 'coordinator', 'index.js');

const mtime = (path) => statSync(path, { throwIfNoEntry: false })?.mtimeMs;
const built = mtime(join(outdir, 'launch.js'));
const inputs = [mtime(join(root, 'dist', '.tsbuildinfo')), mtime(fileURLToPath(import.meta.url)), mtime(join(root, 'package-lock.json'))];
if (mtime(entry) === undefined) throw new Error(`${entry} is missing: run tsc -b first`);
if (built !== undefined && inputs.every((t) => t === undefined || t <= built) && !process.argv.includes('--force')) process.exit(0);

/** ./posix/relative form of `target` as seen from the bundle's folder. */
const fromOutdir = (target) => {
  const rel = relative(outdir, target).split(sep).join('/');
  return rel.startsWith('.') ? rel : `./${rel}`;
};

const keepServerOut = {
  name: 'server-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      if (target === server) return { path: fromOutdir(target), external: true };
      return process.env.SE_FREE === '1' && target.startsWith(src + sep) ? { path: target, sideEffects: false } : undefined;
    });
  },
};

// zod's namespace re-exports all of its ~50 message locales (260 KB of the bundle's 1.3 MB, parsed
// on every start) for `z.locales`; English is imported on its own, and nothing here uses another.
// In the bundle `z.locales` is an empty namespace; the compiled modules keep the real one.
const noZodLocales = {
  name: 'no-zod-locales',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]v4[\\/](classic|core)$/.test(args.resolveDir) ? { path: 'zod-locales', namespace: 'stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

const fileUrls = {
  name: 'file-urls',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(src + sep)) return undefined;
      const code = readFileSync(args.path, 'utf8').replace(/new URL\((['"])(\.\.?\/[^'"]+)\1, import\.meta\.url\)/g, (_m, _q, rel) => {
        return `new URL(${JSON.stringify(fromOutdir(resolve(dirname(args.path), rel)))}, import.meta.url)`;
      });
      return { contents: code, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

// Written beside the old bundle, then swapped in: never a half-written file under the real name.
const staging = `${outdir}.tmp-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
try {
  await build({
    entryPoints: { launch: entry },
    outdir: staging,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: true,
    // Error classes name themselves by `new.target.name` (client/errors.ts), and output.ts reads it.
    keepNames: true,
    external: ['lmdb'],
    plugins: [keepServerOut, noZodLocales, fileUrls],
    // CommonJS packages (commander, undici) call require() for Node's modules.
    banner: { js: "import { createRequire as __dbxRequire } from 'node:module'; const require = __dbxRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  rmSync(outdir, { recursive: true, force: true });
  renameSync(staging, outdir);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
