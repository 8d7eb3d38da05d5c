import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime, SandboxSpec } from '../src/interface.js';
import { describeRuntimeConformance } from './conformance/index.js';
import { makeLocalRuntime, NET, removeTestNetwork } from './local-fixture.js';
import { shellOk, waitFor } from './shared/sandbox-shell.js';

describe('local driver', () => {
  afterAll(() => removeTestNetwork());

  describeRuntimeConformance('local', makeLocalRuntime);

  describe('local specifics', () => {
    let stateDir = '';
    let rt: Runtime;
    const spec = (id: string, diskMb = 256): SandboxSpec => ({
      id: `loc-${process.pid}-${id}`,
      template: 'base',
      resources: { cpu: 1, memoryMb: 256, diskMb, pids: 128 },
      env: { SECRET: 's3cret' },
      network: { mode: 'none' },
      metadata: {},
    });
    const initPidOf = (id: string) =>
      (
        JSON.parse(readFileSync(join(stateDir, 'sandboxes', id, 'state.json'), 'utf8')) as {
          init: { pid: number };
        }
      ).init.pid;

    beforeAll(() => {
      stateDir = mkdtempSync(join(tmpdir(), 'corral-local-'));
      rt = makeLocalRuntime(stateDir);
    });
    afterAll(async () => {
      for (const s of await rt.list()) await rt.destroy(s.id);
      await rt.close();
      rmSync(stateDir, { recursive: true, force: true });
    });

    it('keeps state on disk, 0600 (it holds the env)', async () => {
      const s = spec('state');
      await rt.create(s);
      const file = join(stateDir, 'sandboxes', s.id, 'state.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(file, 'utf8')).state).toBe('running');
    });

    it('destroy leaves no mount, cgroup, netns or directory behind', async () => {
      const s = spec('leak');
      await rt.create(s);
      const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8');
      expect(mounts()).toContain(s.id);
      expect(
        existsSync(`/sys/fs/cgroup/memory/corral/${s.id}`) || existsSync(`/sys/fs/cgroup/corral/${s.id}`),
      ).toBe(true);
      expect(existsSync(`/run/netns/${NET.netnsPrefix}${s.id}`)).toBe(true);
      const diskId = (
        JSON.parse(readFileSync(join(stateDir, 'sandboxes', s.id, 'state.json'), 'utf8')) as {
          diskId: string;
        }
      ).diskId;
      const diskDir = join(stateDir, 'disks', diskId);
      expect(mounts()).toContain(diskDir);
      await rt.destroy(s.id);
      expect(mounts()).not.toContain(diskDir);
      expect(existsSync(`${diskDir}.img`)).toBe(false);
      expect(mounts()).not.toContain(s.id);
      for (const c of readdirSync('/sys/fs/cgroup'))
        expect(existsSync(`/sys/fs/cgroup/${c}/corral/${s.id}`)).toBe(false);
      expect(existsSync(`/run/netns/${NET.netnsPrefix}${s.id}`)).toBe(false);
      expect(existsSync(join(stateDir, 'sandboxes', s.id))).toBe(false);
    });

    it('root inside cannot reconfigure the network namespace (it belongs to the host)', async () => {
      const s = spec('netns-owner');
      await rt.create({ ...s, network: { mode: 'internet' } });
      const out = await shellOk(
        rt,
        s.id,
        'ip link set lo down && echo LO-DOWN; ip addr add 10.9.9.9/32 dev lo && echo ADDR; ' +
          'ip route add 10.8.0.0/16 dev lo && echo ROUTE; ip link add x type dummy && echo LINK; ' +
          'ip link | grep -c "state UP"; true',
        { user: 'root' },
      );
      expect(out).not.toMatch(/LO-DOWN|ADDR|ROUTE|LINK/);
    });

    it('works without a disk cap (upper dir in the state dir): stop/start, snapshot, destroy', async () => {
      const s = spec('nocap', 0);
      await rt.create(s);
      await shellOk(rt, s.id, 'echo uncapped > ~/u');
      await rt.stop(s.id);
      await rt.start(s.id);
      expect(await shellOk(rt, s.id, 'cat ~/u')).toBe('uncapped\n');
      const snap = await rt.snapshot(s.id, join(stateDir, 'nocap.tar'));
      expect(snap.sizeBytes).toBeGreaterThan(0);
      await rt.destroy(s.id);
      expect(existsSync(join(stateDir, 'sandboxes', s.id))).toBe(false);
    });

    it('restore rejects archives that could escape the upper dir or smuggle host files', async () => {
      const s = spec('evil-restore');
      await rt.create(s);
      await shellOk(rt, s.id, 'echo intact > ~/keep');
      const work = mkdtempSync(join(tmpdir(), 'corral-evil-'));
      const sandboxOwned = ['--owner=100000', '--group=100000', '--numeric-owner'];
      const tar = (name: string, args: string[]) => {
        execFileSync('tar', ['-czf', join(work, name), ...args], { cwd: work, stdio: 'ignore' });
        return join(work, name);
      };
      writeFileSync(join(work, 'x'), 'payload');
      symlinkSync('/etc', join(work, 'link'));
      execFileSync('mknod', [join(work, 'sda'), 'b', '8', '0']);
      const archives = [
        tar('abs.tgz', [...sandboxOwned, '-P', '--transform', 's,^x$,/tmp/corral-escaped,', 'x']),
        tar('dotdot.tgz', [...sandboxOwned, '-P', '--transform', 's,^x$,../../escaped,', 'x']),
        tar('below-link.tgz', [...sandboxOwned, 'link', '--transform', 's,^x$,link/passwd,', 'x']),
        tar('device.tgz', [...sandboxOwned, 'sda']),
        tar('host-owned.tgz', ['--owner=0', '--group=0', '--numeric-owner', 'x']),
      ];
      try {
        for (const archive of archives) {
          await expect(rt.restore(s.id, archive), archive).rejects.toMatchObject({
            code: 'SNAPSHOT_INVALID',
          });
        }
        expect((await rt.get(s.id))?.state).toBe('running');
        expect(await shellOk(rt, s.id, 'cat ~/keep')).toBe('intact\n');
        expect(existsSync('/tmp/corral-escaped')).toBe(false);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });

    it('refuses memory snapshots', async () => {
      const s = spec('nomem');
      await rt.create(s);
      await expect(rt.snapshot(s.id, join(stateDir, 'x.tar'), { includeMemory: true })).rejects.toMatchObject(
        {
          code: 'UNSUPPORTED',
        },
      );
    });

    it('marks a sandbox whose init died as stopped, and starts it again', async () => {
      const s = spec('crash');
      await rt.create(s);
      await shellOk(rt, s.id, 'echo persisted > ~/p');
      process.kill(initPidOf(s.id), 'SIGKILL');
      await waitFor('the sandbox to be seen stopped', async () =>
        (await rt.get(s.id))?.state === 'stopped' ? true : undefined,
      );
      expect((await rt.start(s.id)).state).toBe('running');
      expect(await shellOk(rt, s.id, 'cat ~/p')).toBe('persisted\n');
    });

    it('reports stats from the cgroup and the upper layer', async () => {
      const s = spec('stats');
      await rt.create(s);
      await shellOk(rt, s.id, 'head -c 3000000 /dev/urandom > ~/blob');
      const stats = await rt.stats(s.id);
      expect(stats.diskBytes).toBeGreaterThan(3_000_000);
      expect(stats.memoryBytes).toBeGreaterThan(0);
      expect(stats.cpuSeconds).toBeGreaterThan(0);
      expect(stats.pids).toBeGreaterThanOrEqual(1);
    });

    it('keeps the disk intact across stop/start while another mount namespace holds a copy of it', async () => {
      const s = spec('foreign-ns');
      await rt.create(s);
      // Any process that unshares a mount namespace (another container runtime, ip netns exec…)
      // copies our disk mounts and keeps their ext4 superblocks alive after we unmount.
      const holder = spawn('unshare', ['-m', '--propagation', 'unchanged', 'sleep', '600'], {
        stdio: 'ignore',
      });
      try {
        for (let round = 0; round < 3; round++) {
          await shellOk(rt, s.id, `echo round-${round} >> ~/log`);
          await rt.stop(s.id);
          await rt.start(s.id);
        }
        expect(await shellOk(rt, s.id, 'cat ~/log')).toBe('round-0\nround-1\nround-2\n');
      } finally {
        holder.kill('SIGKILL');
      }
    });

    it('caps the disk: a fill stops at diskMb and the sandbox keeps working', async () => {
      const s = spec('disk', 64);
      await rt.create(s);
      const out = await shellOk(
        rt,
        s.id,
        'dd if=/dev/zero of=~/fill bs=1M count=200 2>&1 | tail -1; du -m ~/fill | cut -f1',
      );
      expect(Number(out.trim().split('\n').pop())).toBeLessThanOrEqual(64);
      expect(await shellOk(rt, s.id, 'rm ~/fill; echo ok > ~/small; cat ~/small')).toBe('ok\n');
    });
  });
});
