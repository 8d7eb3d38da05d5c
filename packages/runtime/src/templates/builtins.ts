import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SANDBOX_USER_GID, SANDBOX_USER_HOME, SANDBOX_USER_NAME, SANDBOX_USER_UID } from '../shared/ids.js';
import type { TemplateDefinition } from './interface.js';
import { shellQuote } from './mmdebstrap.js';

/** The Debian suite templates use unless a definition names another. */
export const DEFAULT_SUITE = 'bookworm';

/** Packages every Debian template has, on top of mmdebstrap's minbase variant. */
export const BASE_PACKAGES = [
  'bash',
  'coreutils',
  'git',
  'curl',
  'ca-certificates',
  'procps',
  'iproute2',
  'sudo',
  'less',
  'tar',
  'gzip',
  'findutils',
] as const;

/** The built-in templates: each is base plus its extras, built in one mmdebstrap run (no layering). */
export const BUILTIN_DEFINITIONS: Readonly<Record<string, TemplateDefinition>> = {
  base: { name: 'base', packages: [] },
  python: { name: 'python', packages: ['python3', 'python3-pip', 'python3-venv'] },
  nodejs: { name: 'nodejs', packages: ['nodejs', 'npm'] },
  go: { name: 'go', packages: ['golang'] },
  gui: {
    name: 'gui',
    packages: ['xvfb', 'openbox', 'x11vnc', 'novnc', 'websockify', 'x11-xserver-utils', 'xterm'],
    // noVNC's directory root opens the viewer, connected (a port-forward URL ends in `/`).
    run: [
      `printf '%s\\n' '<!doctype html><meta http-equiv="refresh" content="0; url=vnc.html?autoconnect=1&amp;resize=remote">' > /usr/share/novnc/index.html`,
    ],
  },
};

/** Names of the built-in templates, in a stable order. */
export const BUILTIN_NAMES: readonly string[] = Object.keys(BUILTIN_DEFINITIONS);

/** The host hostname every template carries; drivers may override it per sandbox. */
const TEMPLATE_HOSTNAME = 'corral';

/**
 * mmdebstrap customize hooks (run on the host, "$1" = the tree) that add the sandbox user with
 * passwordless sudo, then run the definition's own steps as root inside the tree.
 */
export function customizeHooks(run: readonly string[] = []): string[] {
  const uid = SANDBOX_USER_UID;
  const gid = SANDBOX_USER_GID;
  const user = SANDBOX_USER_NAME;
  const sudoers = `"$1/etc/sudoers.d/90-${user}"`;
  return [
    `chroot "$1" groupadd --gid ${gid} ${user}`,
    `chroot "$1" useradd --create-home --home-dir ${SANDBOX_USER_HOME} --uid ${uid} --gid ${gid} --shell /bin/bash ${user}`,
    `printf '%s\\n' ${shellQuote(`${user} ALL=(ALL:ALL) NOPASSWD:ALL`)} > ${sudoers} && chmod 0440 ${sudoers}`,
    ...run.map(
      (step) =>
        `chroot "$1" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive ` +
        `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -ec ${shellQuote(step)}`,
    ),
  ];
}

/**
 * Final touches on a freshly built Debian tree: hostname, hosts, an empty resolv.conf for the
 * driver to bind over, the C.UTF-8 locale, and no apt lists (they go stale anyway).
 */
export async function finishDebianTree(rootfs: string): Promise<void> {
  const etc = path.join(rootfs, 'etc');
  await writeFile(path.join(etc, 'hostname'), `${TEMPLATE_HOSTNAME}\n`);
  await writeFile(
    path.join(etc, 'hosts'),
    [
      '127.0.0.1\tlocalhost',
      `127.0.1.1\t${TEMPLATE_HOSTNAME}`,
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      '',
    ].join('\n'),
  );
  await rm(path.join(etc, 'resolv.conf'), { force: true });
  await writeFile(path.join(etc, 'resolv.conf'), '');
  await writeFile(path.join(etc, 'default', 'locale'), 'LANG=C.UTF-8\n');
  const lists = path.join(rootfs, 'var', 'lib', 'apt', 'lists');
  for (const name of await readdir(lists).catch(() => [] as string[])) {
    if (name !== 'partial') await rm(path.join(lists, name), { recursive: true, force: true });
  }
}
