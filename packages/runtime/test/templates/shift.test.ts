import { execFile } from 'node:child_process';
import { chmod, chown, lchown, link, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_ID_BASE } from '../../src/shared/ids.js';
import { capabilityText } from '../../src/templates/capabilities.js';
import { shiftTree } from '../../src/templates/shift.js';

const execFileAsync = promisify(execFile);
let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'corral-tpl-shift-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('shiftTree', () => {
  it('moves owners into the sandbox range, keeping setuid/setgid bits, capabilities and hard links', async () => {
    const tree = path.join(root, 'tree');
    await mkdir(path.join(tree, 'home/user'), { recursive: true });
    await writeFile(path.join(tree, 'home/user/own'), 'x');
    await chown(path.join(tree, 'home/user/own'), 1000, 1000);
    await writeFile(path.join(tree, 'suid'), 'x');
    await chmod(path.join(tree, 'suid'), 0o4755);
    await mkdir(path.join(tree, 'sgid-dir'));
    await chown(path.join(tree, 'sgid-dir'), 0, 50);
    await chmod(path.join(tree, 'sgid-dir'), 0o2775);
    await writeFile(path.join(tree, 'big'), Buffer.alloc(10_000));
    await link(path.join(tree, 'big'), path.join(tree, 'big-link'));
    await symlink('/nonexistent-target', path.join(tree, 'dangling'));
    await lchown(path.join(tree, 'dangling'), 1000, 1000);
    await writeFile(path.join(tree, 'outsider'), 'x');
    await chown(path.join(tree, 'outsider'), 70_000, 70_000);
    await writeFile(path.join(tree, 'ping'), 'x');
    await chmod(path.join(tree, 'ping'), 0o755);
    await execFileAsync('setcap', ['cap_net_raw=ep', path.join(tree, 'ping')]);

    const { sizeBytes } = await shiftTree(tree);

    const owner = async (p: string) => {
      const info = await lstat(path.join(tree, p));
      return [info.uid, info.gid, info.mode & 0o7777];
    };
    expect(await owner('.')).toEqual([SANDBOX_ID_BASE, SANDBOX_ID_BASE, 0o755]);
    expect(await owner('home/user/own')).toEqual([SANDBOX_ID_BASE + 1000, SANDBOX_ID_BASE + 1000, 0o644]);
    expect(await owner('suid')).toEqual([SANDBOX_ID_BASE, SANDBOX_ID_BASE, 0o4755]);
    expect(await owner('sgid-dir')).toEqual([SANDBOX_ID_BASE, SANDBOX_ID_BASE + 50, 0o2775]);
    expect(await owner('big')).toEqual([SANDBOX_ID_BASE, SANDBOX_ID_BASE, 0o644]); // shifted once, not twice
    expect((await owner('dangling')).slice(0, 2)).toEqual([SANDBOX_ID_BASE + 1000, SANDBOX_ID_BASE + 1000]);
    expect(await owner('outsider')).toEqual([SANDBOX_ID_BASE + 65_534, SANDBOX_ID_BASE + 65_534, 0o644]);
    // The capability survives the chown, as a v3 (namespaced) one owned by the sandbox's root.
    const { stdout } = await execFileAsync('getcap', ['-n', path.join(tree, 'ping')]);
    expect(stdout).toContain('cap_net_raw=ep');
    expect(stdout).toContain(`[rootid=${SANDBOX_ID_BASE}]`);
    // Apparent size, hard links once: what `du -sb` says.
    const du = await execFileAsync('du', ['-sb', tree]);
    expect(sizeBytes).toBe(Number.parseInt(du.stdout, 10));
  });
});

describe('capabilityText', () => {
  const vfsCap = (magic: number, words: Array<[number, number]>, rootid?: number) => {
    const raw = Buffer.alloc(4 + 8 * words.length + (rootid === undefined ? 0 : 4));
    raw.writeUInt32LE(magic >>> 0, 0);
    words.forEach(([permitted, inheritable], i) => {
      raw.writeUInt32LE(permitted >>> 0, 4 + 8 * i);
      raw.writeUInt32LE(inheritable >>> 0, 8 + 8 * i);
    });
    if (rootid !== undefined) raw.writeUInt32LE(rootid, 4 + 8 * words.length);
    return raw;
  };

  it('reads v2 and v3 values, high capability numbers and the effective flag', () => {
    // cap_net_raw (13) permitted+effective, cap_net_admin (12) inheritable.
    expect(
      capabilityText(
        vfsCap(0x0200_0001, [
          [1 << 13, 1 << 12],
          [0, 0],
        ]),
      ),
    ).toBe('13=pe 12+ie');
    // v3 (namespaced), cap_checkpoint_restore (40) permitted only.
    expect(
      capabilityText(
        vfsCap(
          0x0300_0000,
          [
            [0, 0],
            [1 << 8, 0],
          ],
          100_000,
        ),
      ),
    ).toBe('40=p');
    expect(
      capabilityText(
        vfsCap(0x0200_0000, [
          [0, 0],
          [0, 0],
        ]),
      ),
    ).toBeUndefined();
    expect(capabilityText(Buffer.from([1, 2]))).toBeUndefined();
  });
});
