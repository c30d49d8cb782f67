/**
 * `node --import <this> …` records which modules a process loads into $MODULE_TRACE_FILE: every ESM
 * resolution (through loader hooks, which see `import 'fastify'` even for a CommonJS package) and,
 * at exit, every CommonJS module in require's cache. Tests read it to assert a module graph (what
 * a command must not load), which unlike a time does not depend on the machine's load.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const file = process.env.MODULE_TRACE_FILE;
if (file) {
  register(new URL('./module-trace-hooks.js', import.meta.url), { data: { file } });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => appendFileSync(file, Object.keys(cache).map((path) => `${path}\n`).join('')));
}
