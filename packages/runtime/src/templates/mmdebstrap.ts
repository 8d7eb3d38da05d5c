import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { RuntimeError } from '../errors.js';

const MMDEBSTRAP_CANDIDATES = ['/usr/bin/mmdebstrap', '/usr/local/bin/mmdebstrap'];
/** How long mmdebstrap gets to clean up after SIGTERM (its mounts are undone by removeTree otherwise). */
const KILL_GRACE_MS = 60_000;
const UNSTABLE_SUITES = new Set(['sid', 'unstable', 'experimental', 'rc-buggy']);
const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

/**
 * Absolute path of the mmdebstrap binary (`override` when given, else from PATH);
 * PREREQUISITE_MISSING when it is not installed.
 */
export async function findMmdebstrap(override?: string): Promise<string> {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  const candidates = override
    ? [override]
    : [...dirs.map((dir) => path.join(dir, 'mmdebstrap')), ...MMDEBSTRAP_CANDIDATES];
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new RuntimeError('PREREQUISITE_MISSING', 'mmdebstrap is not installed', {
    prerequisite: 'mmdebstrap',
    fix: 'apt-get install mmdebstrap',
  });
}

/** The Debian and Debian-security mirrors the host's apt uses (deb.debian.org when none is found). */
export async function hostDebianMirrors(): Promise<{ debian: string; security: string }> {
  const texts: string[] = [];
  for (const file of ['/etc/apt/sources.list']) {
    texts.push(await readFile(file, 'utf8').catch(() => ''));
  }
  const dir = '/etc/apt/sources.list.d';
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (name.endsWith('.list') || name.endsWith('.sources')) {
      texts.push(await readFile(path.join(dir, name), 'utf8').catch(() => ''));
    }
  }
  const uris = texts.flatMap((text) =>
    [...text.matchAll(/^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S.*)$/gim)].flatMap((m) =>
      (m[1] ?? '').trim().split(/\s+/),
    ),
  );
  const clean = (uri: string) => uri.replace(/\/+$/, '');
  const security = uris.find((uri) => /\/debian-security$/.test(clean(uri)));
  const debian = uris.find((uri) => /\/debian$/.test(clean(uri)));
  return {
    debian: debian ? clean(debian) : DEFAULT_DEBIAN_MIRROR,
    security: security ? clean(security) : DEFAULT_SECURITY_MIRROR,
  };
}

export interface MmdebstrapRun {
  suite: string;
  target: string;
  packages: readonly string[];
  /** Shell commands run on the host with "$1" = the tree, after packages are installed. */
  customizeHooks: readonly string[];
  onLine: (line: string) => void;
  signal?: AbortSignal;
  /** The mmdebstrap binary to run (see findMmdebstrap). */
  binary: string;
}

/** Build a Debian tree with `mmdebstrap --mode=root --variant=minbase`; rejects on a non-zero exit. */
export async function runMmdebstrap(run: MmdebstrapRun): Promise<void> {
  const binary = run.binary;
  const mirrors = await hostDebianMirrors();
  const sources = [`deb ${mirrors.debian} ${run.suite} main`];
  // Unstable and experimental have no -updates or -security suites.
  if (!UNSTABLE_SUITES.has(run.suite)) {
    sources.push(
      `deb ${mirrors.debian} ${run.suite}-updates main`,
      `deb ${mirrors.security} ${run.suite}-security main`,
    );
  }
  const args = [
    '--mode=root',
    '--variant=minbase',
    '--format=directory',
    '--verbose',
    // Sandboxes need no manuals, translations or docs; keep the copyright files.
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--dpkgopt=path-include=/usr/share/locale/locale.alias',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--aptopt=APT::Install-Recommends "false"',
    ...(run.packages.length > 0 ? [`--include=${run.packages.join(',')}`] : []),
    ...run.customizeHooks.map((hook) => `--customize-hook=${hook}`),
    run.suite,
    run.target,
    ...sources,
  ];
  run.onLine(`$ mmdebstrap ${args.map(shellQuote).join(' ')}`);
  run.signal?.throwIfAborted();
  // stdin must not be inherited: mmdebstrap reads sources from a non-terminal stdin.
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' },
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', run.onLine);
  }
  // On abort, SIGTERM lets mmdebstrap unmount /proc, /sys and /dev/pts from the tree; we wait
  // for it to exit before anyone deletes the tree.
  const stop = () => {
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
  };
  run.signal?.addEventListener('abort', stop, { once: true });
  try {
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    });
    run.signal?.throwIfAborted();
    if (exitCode !== 0) throw new Error(`mmdebstrap exited with status ${exitCode}`);
  } finally {
    run.signal?.removeEventListener('abort', stop);
  }
}

/** Quote a string for POSIX sh as one word. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./=:,@%+-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
