#!/usr/bin/env node
/**
 * The `dbx` binary. Start-up cost is paid per command, so this file imports nothing heavy:
 * `--version` answers before the program (commander, zod, the client) is even loaded, and every
 * other command loads only its own command group (command-groups.ts); the server, fastify,
 * piscina and the plugin kinds load only when a command starts an engine.
 *
 * The rest comes from the bundle `npm run build` writes (dist/src/bin/: the same modules in a few
 * minified files, scripts/bundle-cli.mjs) when that bundle was made after the last compile, else
 * from the compiled modules: Node 20 pays ~1 ms per ES module to resolve, read and link, and a
 * direct read loads ~250 of them. A `tsc -b` that changes anything rewrites dist/.tsbuildinfo, so
 * a bundle older than the compiled code is never run. EVENTDBX_CLI_BUNDLE=0 turns it off.
 */
import { statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { cliVersion } from './version.js';

function entry(): string {
  const bundle = new URL('../bin/launch.js', import.meta.url);
  if (process.env.EVENTDBX_CLI_BUNDLE !== '0') {
    const built = statSync(bundle, { throwIfNoEntry: false })?.mtimeMs;
    const compiled = statSync(new URL('../../.tsbuildinfo', import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (built !== undefined && built >= compiled) return bundle.href;
  }
  return new URL('./launch.js', import.meta.url).href;
}

// A reader that stops early (`dbx aggregate list | head`) closes the pipe: the rest of the output
// has nowhere to go, which is not a failure of the command (git and psql stop quietly too).
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
}

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${cliVersion()}\n`);
} else {
  // undici parses HTTP with llhttp, a WebAssembly module whose one huge function V8 then compiles
  // again with TurboFan on a background thread, and process exit waits for that compile: ~250 ms
  // after every command that made a request. A command ends long before the faster code could pay
  // off; a process that serves (`start --foreground`, what the daemon runs) keeps V8's defaults.
  if (!args.includes('--foreground')) setFlagsFromString('--liftoff-only');
  const { launch } = (await import(entry())) as typeof import('./launch.js');
  await launch(process.argv);
}
