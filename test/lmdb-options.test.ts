/**
 * Issue 10 item 5: every LMDB environment the server opens runs with `noMemInit` off, so a freed
 * page never carries old bytes (a payload) into a new write. Checked on the sources, where the
 * options are written, so a new environment without it fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('lmdb - every environment is opened with noMemInit: false', () => {
  let opened = 0;
  for (const file of files(src)) {
    const text = readFileSync(file, 'utf8');
    if (!/from 'lmdb'/.test(text)) continue;
    for (const match of text.matchAll(/\bopen\(\{([^}]*)\}/g)) {
      opened++;
      assert.match(match[1] as string, /noMemInit: false/, `${file}: an LMDB environment without noMemInit: false`);
    }
  }
  assert.ok(opened >= 4, `found ${opened} environments (workers, registry, tokens, queue)`);
});
