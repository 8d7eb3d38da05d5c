import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRuntimeError, type RuntimeError } from '../../src/errors.js';
import { SANDBOX_ID_BASE } from '../../src/shared/ids.js';
import { createTemplateStore } from '../../src/templates/index.js';
import { testTemplateDir } from './dir.js';

/** A full mmdebstrap run takes 20-150 s on 2 cores, more when other builds share them. */
const BUILD_TIMEOUT_MS = 600_000;

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'corral-tpl-custom-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('custom definitions', () => {
  it(
    'installs extra packages and runs steps as root inside the tree, before the shift',
    async () => {
      const store = createTemplateStore({ dir: testTemplateDir() });
      const template = await store.build({
        name: 'custom-test',
        packages: ['jq'],
        run: [
          `printf '%s\\n' "it's \${HOME}" > /etc/corral-quoted`,
          'echo mine > /home/user/note && chown user:user /home/user/note',
        ],
      });
      expect(template.name).toBe('custom-test');
      expect((await lstat(path.join(template.rootfs, 'usr/bin/jq'))).isFile()).toBe(true);
      expect(await readFile(path.join(template.rootfs, 'etc/corral-quoted'), 'utf8')).toBe("it's /root\n");
      const note = await lstat(path.join(template.rootfs, 'home/user/note'));
      expect([note.uid, note.gid]).toEqual([SANDBOX_ID_BASE + 1000, SANDBOX_ID_BASE + 1000]);
      // Same definition, same id; package order does not matter.
      const again = await store.build({
        name: 'custom-test',
        packages: ['jq'],
        run: [
          `printf '%s\\n' "it's \${HOME}" > /etc/corral-quoted`,
          'echo mine > /home/user/note && chown user:user /home/user/note',
        ],
      });
      expect(again).toEqual(template);
    },
    BUILD_TIMEOUT_MS,
  );

  it(
    'fails with TEMPLATE_BUILD_FAILED and the log tail for a package that does not exist, leaving nothing',
    async () => {
      const dir = path.join(scratch, 'failing');
      const store = createTemplateStore({ dir });
      const error = await store
        .build({ name: 'broken', packages: ['corral-no-such-package'] })
        .catch((err: unknown) => err);
      expect(isRuntimeError(error, 'TEMPLATE_BUILD_FAILED')).toBe(true);
      const log = String((error as RuntimeError).details.log);
      expect(log).toContain('corral-no-such-package');
      expect(log.split('\n').length).toBeLessThanOrEqual(20);
      expect((await readdir(dir)).filter((name) => !name.startsWith('.lock-'))).toEqual([]);
      expect(await store.list()).toEqual([]);
    },
    BUILD_TIMEOUT_MS,
  );

  it(
    'stops mmdebstrap on abort, waiting for it to unmount, and leaves nothing',
    async () => {
      const dir = path.join(scratch, 'aborted');
      const store = createTemplateStore({ dir });
      const controller = new AbortController();
      const error = await store
        .build(
          { name: 'aborted', packages: ['jq'] },
          {
            signal: controller.signal,
            // Package configuration runs in the chroot, with /proc and /sys mounted inside the tree.
            onProgress: (line) => {
              if (line.startsWith('Setting up ')) controller.abort();
            },
          },
        )
        .catch((err: unknown) => err);
      expect((error as Error).name).toBe('AbortError');
      expect(await readdir(dir)).toEqual([]);
      const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
      expect(mountinfo).not.toContain(dir);
    },
    BUILD_TIMEOUT_MS,
  );

  it('rejects a malformed definition with TEMPLATE_INVALID', async () => {
    const store = createTemplateStore({ dir: path.join(scratch, 'invalid') });
    for (const definition of [
      { name: 'x', packages: ['ok', 'bad name;rm -rf /'] },
      { name: '../escape', packages: [] },
      { name: 'x', packages: [], suite: 'bookworm main' },
      { name: 'x', packages: [], run: [''] },
    ]) {
      const error = await store.build(definition).catch((err: unknown) => err);
      expect(isRuntimeError(error, 'TEMPLATE_INVALID')).toBe(true);
    }
  });

  it('reports a missing mmdebstrap as PREREQUISITE_MISSING naming the fix', async () => {
    const store = createTemplateStore({
      dir: path.join(scratch, 'nomm'),
      mmdebstrapPath: '/nonexistent/mmdebstrap',
    });
    const error = await store.build({ name: 'x', packages: ['hello'] }).catch((err: unknown) => err);
    expect(isRuntimeError(error, 'PREREQUISITE_MISSING')).toBe(true);
    expect((error as RuntimeError).details.fix).toBe('apt-get install mmdebstrap');
  });
});
