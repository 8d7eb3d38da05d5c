import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGvisorRuntime } from '../src/gvisor/index.js';
import type { Runtime, SandboxSpec } from '../src/interface.js';
import { createNetworkManager } from '../src/local/network/index.js';
import { createTemplateStore } from '../src/templates/index.js';
import { describeRuntimeConformance } from './conformance/index.js';
import { describeEscapes } from './escape/index.js';
import { removeTestNetwork } from './local-fixture.js';
import { shellOk, waitFor } from './shared/sandbox-shell.js';

const TEMPLATE_DIR = '/var/cache/corral/templates';

// Network names private to the gvisor tests (the local driver's tests use their own).
const NET = {
  bridge: 'crgvbr0',
  tableName: 'corral_gv',
  netnsPrefix: 'corralgv-',
  vethPrefix: 'gv-',
  subnet: '100.117.0.0/16',
};

function makeGvisorRuntime(stateDir: string): Runtime {
  return createGvisorRuntime({
    stateDir,
    templates: createTemplateStore({ dir: TEMPLATE_DIR }),
    network: createNetworkManager({ stateDir: join(stateDir, 'network'), ...NET }),
  });
}

describe('gvisor driver', () => {
  afterAll(() => removeTestNetwork(NET));

  describeRuntimeConformance('gvisor', makeGvisorRuntime);
  describeEscapes('gvisor', makeGvisorRuntime, {
    name: 'gvisor',
    names: {
      bridge: 'crgve0',
      tableName: 'corral_gv_esc',
      netnsPrefix: 'corralgvesc-',
      vethPrefix: 'gve-',
      subnet: '100.118.0.0/16',
    },
    makeRuntime: (stateDir, network) =>
      createGvisorRuntime({
        stateDir,
        templates: createTemplateStore({ dir: TEMPLATE_DIR }),
        network: createNetworkManager({ stateDir: join(stateDir, 'network'), ...network }),
      }),
  });

  describe('gvisor specifics', () => {
    let stateDir = '';
    let rt: Runtime;
    const spec = (name: string): SandboxSpec => ({
      id: `gv-${process.pid}-${name}`,
      template: 'base',
      resources: { cpu: 1, memoryMb: 256, diskMb: 256, pids: 128 },
      env: {},
      network: { mode: 'none' },
      metadata: {},
    });

    beforeAll(() => {
      stateDir = mkdtempSync(join(tmpdir(), 'corral-gvisor-'));
      rt = makeGvisorRuntime(stateDir);
    });
    afterAll(async () => {
      for (const s of await rt.list()) await rt.destroy(s.id);
      await rt.close();
      rmSync(stateDir, { recursive: true, force: true });
    });

    // A value that exists only in the shell's memory: written to disk only on SIGUSR1.
    const KEEPER =
      'v=$RANDOM$RANDOM$RANDOM; trap \'echo "$v" > /tmp/dump\' USR1; echo $$ > /tmp/keeper.pid; while :; do sleep 0.1; done';

    // Detached from the exec's streams: a process still holding an API stream is ended by hibernate.
    async function startKeeper(id: string): Promise<number> {
      await shellOk(rt, id, 'nohup bash -c "$1" </dev/null >/dev/null 2>&1 &', { args: [KEEPER] });
      const pid = await waitFor(
        'the keeper to start',
        async () =>
          Number((await shellOk(rt, id, 'cat /tmp/keeper.pid 2>/dev/null || true')).trim()) || undefined,
      );
      return pid;
    }

    async function dump(id: string, pid: number): Promise<string> {
      await shellOk(rt, id, `rm -f /tmp/dump; kill -USR1 ${pid}`);
      return waitFor('the dump', async () => {
        const out = (await shellOk(rt, id, 'cat /tmp/dump 2>/dev/null || true')).trim();
        return out ? out : undefined;
      });
    }

    it('hibernate keeps memory: the same process holds the same in-memory value after resume', async () => {
      const s = spec('hib-mem');
      await rt.create(s);
      const pid = await startKeeper(s.id);
      const before = await dump(s.id, pid);
      expect((await rt.hibernate(s.id)).state).toBe('hibernated');
      expect(await rt.processes(s.id)).toEqual([]);
      expect((await rt.resume(s.id)).state).toBe('running');
      expect(await dump(s.id, pid)).toBe(before);
      expect((await rt.processes(s.id)).map((p) => p.pid)).not.toContain(-1);
    });

    it('a memory snapshot restores running processes with their memory', async () => {
      const s = spec('snap-mem');
      await rt.create(s);
      const pid = await startKeeper(s.id);
      const before = await dump(s.id, pid);
      await shellOk(rt, s.id, 'echo on-disk > ~/f');
      const dest = join(stateDir, 'mem.snap');
      const snap = await rt.snapshot(s.id, dest, { includeMemory: true });
      expect(snap.includesMemory).toBe(true);
      expect(await dump(s.id, pid)).toBe(before);
      // Diverge after the snapshot, then go back to it.
      await shellOk(rt, s.id, `kill -9 ${pid}; echo changed > ~/f`);
      expect((await rt.restore(s.id, dest)).state).toBe('running');
      expect(await shellOk(rt, s.id, 'cat ~/f')).toBe('on-disk\n');
      expect(await dump(s.id, pid)).toBe(before);
    });

    it('destroy leaves no runsc container, mount, cgroup, netns or directory behind', async () => {
      const s = spec('leak');
      await rt.create(s);
      const cid = `c${createHash('sha256').update(join(stateDir, 'gvisor')).digest('hex').slice(0, 8)}-${s.id}`;
      const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8');
      const runscIds = () =>
        execFileSync('runsc', [`--root=${join(stateDir, 'gvisor', '.runsc-root')}`, 'list', '--quiet'], {
          encoding: 'utf8',
        });
      expect(runscIds()).toContain(cid);
      expect(existsSync(`/sys/fs/cgroup/memory/corral-gvisor/${cid}`)).toBe(true);
      expect(existsSync(`/run/netns/${NET.netnsPrefix}${s.id}`)).toBe(true);
      await rt.destroy(s.id);
      expect(runscIds()).not.toContain(cid);
      expect(mounts()).not.toContain(join(stateDir, 'gvisor', s.id));
      for (const c of readdirSync('/sys/fs/cgroup')) {
        expect(existsSync(`/sys/fs/cgroup/${c}/corral-gvisor/${cid}`)).toBe(false);
      }
      expect(existsSync(`/run/netns/${NET.netnsPrefix}${s.id}`)).toBe(false);
      expect(existsSync(join(stateDir, 'gvisor', s.id))).toBe(false);
    });

    it('runs the user process inside gVisor with the id mapping of ids.ts', async () => {
      const s = spec('ids');
      await rt.create(s);
      expect(
        await shellOk(
          rt,
          s.id,
          'uname -r; id -u; stat -c %u /home/user 2>/dev/null || find /home/user -maxdepth 0 -printf "%U\\n"',
        ),
      ).toMatch(/^\S+\n1000\n1000\n$/);
      await shellOk(rt, s.id, 'echo x > ~/mine');
      const upper = join(stateDir, 'gvisor', s.id, 'disk', 'upper', 'home', 'user', 'mine');
      expect(existsSync(upper)).toBe(true);
      expect(Number(execFileSync('stat', ['-c', '%u', upper], { encoding: 'utf8' }).trim())).toBe(101_000);
      // gVisor's own kernel answers, not the host's.
      expect(await shellOk(rt, s.id, 'dmesg 2>/dev/null | head -1 || true')).not.toContain(
        'Linux version 6.',
      );
    });
  });
});
