#!/usr/bin/env node
// Self-set-up for `npm start`, `npm test` and `npm run bench` on a fresh Debian/Ubuntu machine:
// checks Node, installs missing Debian packages (apt as root; otherwise prints the exact
// command and stops), and installs npm dependencies when the lockfile changed.
// Usage: node scripts/setup.mjs [--test]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const forTests = process.argv.includes('--test');
const say = (line) => process.stderr.write(`[setup] ${line}\n`);

/** Debian packages the server needs at run time (the local and gvisor runtimes, templates). */
const RUNTIME_PACKAGES = [
  'util-linux', // unshare, nsenter, setpriv
  'bubblewrap',
  'iproute2',
  'nftables',
  'mmdebstrap',
  'ca-certificates',
  'tar',
  'gzip',
  'zstd',
  'gcc', // compiles the small C exec helper once per machine
  'libc6-dev',
  'runsc', // gVisor isolation
  'runc',
  'procps',
];
/** Extra packages the test suites start for real (throwaway PostgreSQL and Redis, tmux, curl). */
const TEST_PACKAGES = [
  'postgresql',
  'redis-server',
  'tmux',
  'curl',
  'perl',
  'wrk',
  'chromium',
  'openssh-client',
];

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    say(
      `Node ${process.versions.node} is too old: Corral needs Node >= 20.19 (https://nodejs.org or your distribution's nodejs).`,
    );
    process.exit(1);
  }
}

function isInstalled(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function ensureDebianPackages(packages) {
  if (!existsSync('/usr/bin/dpkg-query')) {
    say(
      'not a Debian/Ubuntu system: install the equivalents of these packages yourself: ' + packages.join(' '),
    );
    return;
  }
  const missing = packages.filter((p) => !isInstalled(p));
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    say(`missing Debian packages: ${missing.join(', ')}`);
    say(`run as root:  sudo sh -c '${command}'`);
    process.exit(1);
  }
  say(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function ensureNpmDependencies() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  const stale =
    !existsSync(marker) || mtime(lock) > mtime(marker) || mtime(join(root, 'package.json')) > mtime(marker);
  if (stale) {
    // `npm install` rather than `npm ci`: ci rejects lockfiles whose optional per-platform
    // entries were pruned (e.g. Biome's other-OS binaries), which npm itself writes.
    say('installing npm dependencies');
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], {
      cwd: root,
      stdio: 'inherit',
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  // better-sqlite3 is a native addon: make sure it loads with this Node (rebuild once if not).
  const probe = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:')"], {
    cwd: join(root, 'packages', 'server'),
    encoding: 'utf8',
  });
  if (probe.status !== 0) {
    say('building better-sqlite3 for this Node');
    const r = spawnSync('npm', ['rebuild', 'better-sqlite3'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

checkNode();
ensureDebianPackages(forTests ? [...RUNTIME_PACKAGES, ...TEST_PACKAGES] : RUNTIME_PACKAGES);
ensureNpmDependencies();
if (forTests && readFileSync('/proc/self/status', 'utf8').match(/^Uid:\s+0\s/m) === null) {
  say('note: the runtime suites need root (namespaces, cgroups, overlayfs, nftables); run `sudo npm test`.');
}
