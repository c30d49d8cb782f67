/**
 * Install facts that regress silently: the bin is built executable, `npm ci` runs every install
 * script we depend on (npm 11 runs only those `allowScripts` names), no locked package declares an
 * engine range that excludes the Node we run (npm prints EBADENGINE for those), and every
 * `overrides` pin is inside the range its dependents ask for. It reads package.json and
 * package-lock.json; it never runs `npm ci` (that is the install itself, minutes on this machine).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  engines: { node: string };
  allowScripts?: Record<string, boolean>;
  overrides?: Record<string, string>;
};
interface LockedPackage {
  version?: string;
  engines?: { node?: string } | string[];
  hasInstallScript?: boolean;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockedPackage> };

/** `node_modules/a/node_modules/@s/b` → `@s/b`. */
function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

// ---- a small semver range check (the forms npm packages use in engines and dependency ranges) ----

type Version = [number, number, number];

function parseVersion(text: string): { v: Version; parts: number } {
  const core = text.trim().replace(/^[v=]+/, '').split(/[-+]/)[0] as string;
  const raw = core.split('.').filter((p) => p !== '' && p !== 'x' && p !== 'X' && p !== '*');
  const nums = raw.map(Number);
  assert.ok(nums.every(Number.isInteger), `unparsable version '${text}'`);
  return { v: [nums[0] ?? 0, nums[1] ?? 0, nums[2] ?? 0], parts: nums.length };
}

function cmp(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

/** The exclusive upper bound of a partial version: `1.2` → 1.3.0, `1` → 2.0.0. */
function bump(v: Version, parts: number): Version {
  if (parts <= 1) return [v[0] + 1, 0, 0];
  if (parts === 2) return [v[0], v[1] + 1, 0];
  return [v[0], v[1], v[2] + 1];
}

function satisfiesComparator(version: Version, comparator: string): boolean {
  const m = /^(\^|~|>=|<=|>|<|=)?\s*(.*)$/.exec(comparator.trim()) as RegExpExecArray;
  const op = m[1] ?? '';
  const { v, parts } = parseVersion(m[2] as string);
  switch (op) {
    case '>=':
      return cmp(version, v) >= 0;
    case '>':
      return parts < 3 ? cmp(version, bump(v, parts)) >= 0 : cmp(version, v) > 0;
    case '<=':
      return parts < 3 ? cmp(version, bump(v, parts)) < 0 : cmp(version, v) <= 0;
    case '<':
      return cmp(version, v) < 0;
    case '^': {
      const upper: Version = v[0] > 0 || parts === 1 ? [v[0] + 1, 0, 0] : v[1] > 0 || parts === 2 ? [0, v[1] + 1, 0] : [0, 0, v[2] + 1];
      return cmp(version, v) >= 0 && cmp(version, upper) < 0;
    }
    case '~':
      return cmp(version, v) >= 0 && cmp(version, bump(v, Math.min(parts, 2))) < 0;
    default:
      // A bare (possibly partial: `10.*`, `20.x`) version.
      return parts === 0 || (cmp(version, v) >= 0 && cmp(version, bump(v, parts)) < 0);
  }
}

export function satisfies(versionText: string, range: string): boolean {
  const version = parseVersion(versionText).v;
  return range.split('||').some((alternative) => {
    const set = alternative.trim();
    if (set === '' || set === '*') return true;
    const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(set);
    if (hyphen) return satisfiesComparator(version, `>=${hyphen[1]}`) && satisfiesComparator(version, `<=${hyphen[2]}`);
    // `>= 10` and `>=10` alike: glue an operator to the version after it, then split on spaces.
    const comparators = set.replace(/(\^|~|>=|<=|>|<|=)\s+/g, '$1').split(/\s+/);
    return comparators.every((c) => satisfiesComparator(version, c));
  });
}

test('install - the range check reads the forms the lockfile uses', () => {
  assert.ok(satisfies('20.20.2', '>=20.19'));
  assert.ok(!satisfies('20.20.2', '>=22'));
  assert.ok(satisfies('20.20.2', '>= 10'));
  assert.ok(satisfies('20.20.2', '^16 || ^18 || >=20'));
  assert.ok(!satisfies('19.0.0', '^16 || ^18 || >=20'));
  assert.ok(satisfies('20.20.2', '10.* || >= 12.*'));
  assert.ok(satisfies('20.20.2', '>=20.x'));
  assert.ok(!satisfies('20.18.0', '>=20.18.1'));
  assert.ok(satisfies('6.6.0', '^6.0.0'));
  assert.ok(!satisfies('7.0.0', '^6.0.0'));
  assert.ok(!satisfies('0.3.0', '^0.2.1'));
  assert.ok(satisfies('1.2.9', '~1.2.3'));
  assert.ok(!satisfies('1.3.0', '~1.2.3'));
  assert.ok(satisfies('3.0.4', '^3.0.2'));
});

test('install - the bin is built executable and runs by its shebang', { timeout: 120_000 }, () => {
  const bin = pkg.bin.dbx;
  assert.equal(bin, 'dist/src/cli/main.js');
  // `npm run build` is what the README, `npm start` and `npm link` rely on; up to date it only checks.
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8', timeout: 110_000 });
  assert.equal(build.status, 0, `npm run build failed: ${build.stdout}${build.stderr}`);
  const mode = statSync(join(root, bin)).mode;
  assert.equal(mode & 0o111, 0o111, `${bin} is mode ${(mode & 0o777).toString(8)}, not executable`);
  assert.match(readFileSync(join(root, bin), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  // Run the file itself (not `node file`): that is what `dbx` on the PATH does.
  const run = spawnSync(join(root, bin), ['--version'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), pkg.version);
});

test('install - every locked package with an install script is named in allowScripts', () => {
  const allowed = pkg.allowScripts ?? {};
  const withScripts = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.hasInstallScript)
    .map(([path]) => nameOf(path));
  assert.ok(withScripts.includes('lmdb'), 'lmdb has an install script (the check must see it)');
  for (const name of withScripts) assert.equal(allowed[name], true, `${name} has an install script but allowScripts does not name it: npm ci warns and skips it`);
});

test('install - no locked package declares an engines.node range that excludes this Node', () => {
  const node = process.versions.node;
  assert.ok(satisfies(node, pkg.engines.node), `package.json engines.node ${pkg.engines.node} excludes Node ${node}`);
  const excluded: string[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    const range = Array.isArray(p.engines) ? undefined : p.engines?.node;
    if (path === '' || range === undefined) continue;
    // Optional packages for another platform are never installed here (npm checks only installed ones).
    if (p.optional && ((p.os && !p.os.includes(process.platform)) || (p.cpu && !p.cpu.includes(process.arch)))) continue;
    if (!satisfies(node, range)) excluded.push(`${nameOf(path)}@${p.version} (engines.node ${range})`);
  }
  assert.deepEqual(excluded, [], `npm ci prints EBADENGINE for: ${excluded.join(', ')}`);
});

test('install - every override pins a version its dependents accept', () => {
  const overrides = pkg.overrides ?? {};
  assert.ok(Object.keys(overrides).length > 0);
  for (const [name, pinned] of Object.entries(overrides)) {
    const locked = Object.entries(lock.packages).filter(([path]) => nameOf(path) === name);
    assert.ok(locked.length > 0, `override ${name} names a package that is not installed`);
    for (const [path, p] of locked) assert.equal(p.version, pinned, `${path} is ${p.version}, not the pinned ${pinned}`);
    let dependents = 0;
    for (const [path, p] of Object.entries(lock.packages)) {
      const range = p.dependencies?.[name] ?? p.optionalDependencies?.[name] ?? p.peerDependencies?.[name];
      if (range === undefined) continue;
      dependents++;
      assert.ok(satisfies(pinned, range), `${nameOf(path) || 'eventdbx'} asks for ${name}@${range}; the override pins ${pinned}`);
    }
    assert.ok(dependents > 0, `nothing depends on ${name}: drop the override`);
  }
});

test('install - fastify inject works with the pinned light-my-request (cookies in and out)', { timeout: 20_000 }, async () => {
  // The pin exists because light-my-request 6.8 pulls cookie 2 (engines: node >= 22); 6.6 uses
  // cookie 1, which supports Node 20. fastify loads it for `inject`: exercise the cookie paths.
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  app.get('/echo', async (request, reply) => {
    reply.header('set-cookie', 'session=abc; Path=/; HttpOnly');
    return { cookie: request.headers.cookie ?? null };
  });
  try {
    const res = await app.inject({ method: 'GET', url: '/echo', cookies: { a: '1 2', b: 'x' } });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { cookie: 'a=1%202; b=x' });
    assert.deepEqual(
      res.cookies.map((c) => ({ name: c.name, value: c.value, path: c.path, httpOnly: c.httpOnly })),
      [{ name: 'session', value: 'abc', path: '/', httpOnly: true }],
    );
  } finally {
    await app.close();
  }
});

test('install - npm pack ships the built code, README and config example only: no data dir, tests, bench or sources', () => {
  // A ./data dir in the checkout holds the private key and the root token: it must never be packed.
  const scratch = join(root, `data-pack-probe-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  writeFileSync(join(scratch, 'config.toml'), 'private_key = "secret"\n');
  try {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    assert.ok(files.includes('dist/src/client/index.js'), 'the client is packed');
    assert.ok(files.includes('dist/src/cli/main.js'), 'the CLI is packed');
    const stray = files.filter((p) => !p.startsWith('dist/src/') && !['README.md', 'config.example.toml', 'package.json'].includes(p));
    assert.deepEqual(stray, []);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
