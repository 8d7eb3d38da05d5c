import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireFileLock } from '../../src/templates/lock.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'corral-tpl-lock-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('acquireFileLock', () => {
  it('writes the owner, serialises holders in one process and removes the file on release', async () => {
    const lockPath = path.join(dir, 'serial.lock');
    const release = await acquireFileLock(lockPath);
    expect((await readFile(lockPath, 'utf8')).split(' ')[0]).toBe(String(process.pid));
    let second = false;
    const waiting = acquireFileLock(lockPath).then((releaseSecond) => {
      second = true;
      return releaseSecond;
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(second).toBe(false);
    await release();
    await (await waiting)();
    expect(second).toBe(true);
    await expect(stat(lockPath)).rejects.toThrow(/ENOENT/);
  });

  it('takes over a lock whose owner is gone, or whose pid now names another process', async () => {
    const done = spawn('true');
    await new Promise((resolve) => done.once('exit', resolve));
    const deadPid = path.join(dir, 'dead.lock');
    await writeFile(deadPid, `${done.pid} 12345\n`);
    await (await acquireFileLock(deadPid))();

    // Our own pid with a start time that is not ours: a leftover from before a pid reuse.
    const reused = path.join(dir, 'reused.lock');
    await writeFile(reused, `${process.pid} 1\n`);
    await (await acquireFileLock(reused))();

    const otherStart = path.join(dir, 'other-start.lock');
    await writeFile(otherStart, `1 999999999999\n`);
    await (await acquireFileLock(otherStart))();
  });
});
