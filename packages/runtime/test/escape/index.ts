import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime, SandboxSpec } from '../../src/interface.js';
import type { MakeRuntime } from '../conformance/context.js';
import { shell, shellOk, waitFor } from '../shared/sandbox-shell.js';
import { describeNetworkEscapes, type NetworkEscapeContext } from './network.js';

// x86_64 syscall numbers probed through perl's syscall() (perl-base is in every template).
const SYSCALLS: Record<string, string> = {
  mount: '165, "none", "/mnt", "tmpfs", 0, 0',
  umount2: '166, "/proc", 2',
  pivot_root: '155, "/tmp", "/tmp"',
  init_module: '175, 0, 0, ""',
  finit_module: '313, 0, "", 0',
  delete_module: '176, "ext4", 0',
  kexec_load: '246, 0, 0, 0, 0',
  unshare_user: '272, 0x10000000',
  keyctl: '250, 0, -3, 0',
  swapon: '167, "/tmp/swap", 0',
  reboot: '169, 0xfee1dead, 672274793, 0x4321fedc',
  open_by_handle_at: '304, 0, 0, 0',
};

// Docker's "dangerous" capabilities, by bit number.
const FORBIDDEN_CAPS = {
  CAP_SYS_ADMIN: 21,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_MODULE: 16,
};

/** Bytes actually allocated under `dir` on the host (sparse files count what they hold). */
function allocatedBytes(dir: string): number {
  return Number(execFileSync('du', ['-sx', '--block-size=1', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/**
 * Escape attempts every driver must defeat (run as root inside the sandbox); with `network`, also
 * the network section against sandboxes on a real network manager (see ./network.ts).
 */
export function describeEscapes(
  name: string,
  makeRuntime: MakeRuntime,
  network?: NetworkEscapeContext,
): void {
  if (network) describeNetworkEscapes(network);
  describe(`${name} isolation (escape attempts)`, () => {
    let stateDir = '';
    let rt: Runtime;
    const tag = randomBytes(3).toString('hex');
    const secretPath = `/root/corral-secret-${tag}`;
    const secret = `host-secret-${randomBytes(8).toString('hex')}`;
    const spec = (n: string, resources?: Partial<SandboxSpec['resources']>): SandboxSpec => ({
      id: `esc-${tag}-${n}`,
      template: 'base',
      resources: { cpu: 1, memoryMb: 256, diskMb: 256, pids: 256, ...resources },
      env: {},
      network: { mode: 'none' },
      metadata: {},
    });
    const victim = spec('victim');
    const root = (script: string) => shell(rt, victim.id, script, { user: 'root' });

    beforeAll(async () => {
      writeFileSync(secretPath, secret, { mode: 0o600 });
      stateDir = mkdtempSync(join(tmpdir(), `corral-escape-${name}-`));
      rt = await makeRuntime(stateDir);
      await rt.create(victim);
    });
    afterAll(async () => {
      for (const s of await rt.list()) await rt.destroy(s.id).catch(() => undefined);
      await rt.close();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(secretPath, { force: true });
    });

    it('cannot read a host-only file (directly, via /proc/1/root, via a host pid)', async () => {
      const r = await root(
        `cat ${secretPath}; cat /proc/1/root${secretPath}; cat /proc/${process.pid}/root${secretPath}; ` +
          `grep -rs ${secret} /proc/*/root/root 2>/dev/null | head -1; true`,
      );
      expect(r.stdout + r.stderr).not.toContain(secret);
    });

    it('cannot see or signal host processes', async () => {
      const r = await root(
        `ps -eo comm; kill -0 ${process.pid} && echo KILLED; kill -0 1 && echo pid1-visible`,
      );
      expect(r.stdout).not.toMatch(/\bnode\b|vitest|systemd|sshd/);
      expect(r.stdout).not.toContain('KILLED');
      const pids = await root('ls /proc | grep -cE "^[0-9]+$"');
      expect(Number(pids.stdout.trim())).toBeLessThan(20);
    });

    it('cannot write /proc/sys or /sys', async () => {
      const r = await root(
        'echo 1 > /proc/sys/kernel/sysrq && echo WROTE-SYSCTL; echo 1 > /proc/sysrq-trigger && echo WROTE-SYSRQ; ' +
          'touch /sys/x && echo WROTE-SYS; ls /sys/class/net 2>/dev/null | head -1; ls /sys/block 2>/dev/null | grep -q . && echo SEES-BLOCK; true',
      );
      expect(r.stdout).not.toMatch(/WROTE-|SEES-BLOCK/);
    });

    it('cannot mount, load modules, pivot, reboot or make a user namespace', async () => {
      const probes = Object.entries(SYSCALLS)
        // Arguments go through an array: perl's syscall() refuses read-only string literals.
        .map(
          ([n, args]) =>
            `{ my @a = (${args}); my $nr = shift @a; my $r = syscall($nr, @a); ` +
            `print "${n}=", ($r == -1 ? "denied" : "ALLOWED"), "\\n"; }`,
        )
        .join(' ');
      const r = await root(
        `perl -e '${probes}'; mount -t tmpfs none /mnt && echo MOUNTED; unshare -U true && echo UNSHARED; unshare -r true && echo UNSHARED-R; true`,
      );
      for (const n of Object.keys(SYSCALLS)) expect(r.stdout).toContain(`${n}=denied`);
      expect(r.stdout).not.toMatch(/MOUNTED|UNSHARED/);
    });

    it('root inside holds none of the dangerous capabilities', async () => {
      const r = await root('grep -E "^Cap(Eff|Bnd):" /proc/self/status');
      for (const line of r.stdout.trim().split('\n')) {
        const mask = BigInt(`0x${line.split(/\s+/)[1]}`);
        for (const [cap, bit] of Object.entries(FORBIDDEN_CAPS)) {
          expect({ cap, held: (mask >> BigInt(bit)) & 1n }).toEqual({ cap, held: 0n });
        }
      }
    });

    it('cannot open a raw socket', async () => {
      const r = await root(
        `perl -MSocket -e 'socket(my $s, AF_INET, SOCK_RAW, 1) ? print "RAW-OK\\n" : print "denied\\n"'`,
      );
      expect(r.stdout).toBe('denied\n');
    });

    it('sees only a minimal /dev and cannot make device nodes that work', async () => {
      const r = await root('ls /dev');
      const devs = r.stdout.trim().split('\n');
      for (const forbidden of [
        'sda',
        'vda',
        'mem',
        'kmem',
        'kmsg',
        'port',
        'nvme0',
        'loop0',
        'loop-control',
      ]) {
        expect(devs).not.toContain(forbidden);
      }
      for (const needed of ['null', 'zero', 'urandom', 'random', 'full', 'tty', 'pts', 'ptmx', 'shm']) {
        expect(devs).toContain(needed);
      }
      const mk = await root(
        'mknod /tmp/disk b 8 0 && head -c 512 /tmp/disk >/dev/null && echo READ-DISK; true',
      );
      expect(mk.stdout).not.toContain('READ-DISK');
    });

    it('cannot ptrace a host process', async () => {
      const r = await root(
        `perl -e 'my $r = syscall(101, 16, ${process.pid}, 0, 0); print $r == -1 ? "denied\\n" : "ATTACHED\\n"'`,
      );
      expect(r.stdout).toBe('denied\n');
    });

    it('contains a fork bomb, a memory bomb and a disk fill while a neighbour keeps working', async () => {
      const bad = spec('bombs', { memoryMb: 128, diskMb: 64, pids: 64 });
      // The memory bomb gets a sandbox of its own: under oomScope 'sandbox' it takes its whole
      // sandbox down, and the fork bomb would leave no pid to start it with.
      const badMem = spec('membomb', { memoryMb: 128, diskMb: 64, pids: 64 });
      // And the disk fill too: a root fork bomb beside it could starve it of pids before it reports.
      const badDisk = spec('diskfill', { memoryMb: 128, diskMb: 64, pids: 64 });
      const neighbour = spec('neighbour');
      await rt.create(bad);
      await rt.create(badMem);
      await rt.create(badDisk);
      await rt.create(neighbour);
      const usedBefore = allocatedBytes(stateDir);
      const memBomb = shell(rt, badMem.id, 'perl -e "\\$x = \\"a\\" x (1024 ** 3)"; echo "mem=$?"');
      const attacks = Promise.all([
        shell(rt, bad.id, ':(){ :|:& };: ; sleep 3; echo forked', { user: 'root' }),
        shell(
          rt,
          badDisk.id,
          'dd if=/dev/zero of=/tmp/fill bs=1M count=1000 2>&1 | tail -1; du -m /tmp/fill | cut -f1',
        ),
      ]);
      for (let i = 0; i < 5; i++) {
        expect(await shellOk(rt, neighbour.id, `echo ok-${i}`)).toBe(`ok-${i}\n`);
      }
      const [, disk] = await attacks;
      expect(Number(disk.stdout.trim().split('\n').pop())).toBeLessThanOrEqual(64);
      // What the driver keeps on the host grew by about the cap, not by the 1000 MiB attempted.
      expect(allocatedBytes(stateDir) - usedBefore).toBeLessThan(256 * 1024 * 1024);
      expect((await rt.stats(bad.id)).pids).toBeLessThanOrEqual(64);
      if (rt.features.oomScope === 'process') {
        expect((await memBomb).stdout).toContain('mem=137');
      } else {
        await memBomb.catch(() => undefined);
        await waitFor('the memory-bomb sandbox to stop', async () =>
          (await rt.get(badMem.id))?.state === 'stopped' ? true : undefined,
        );
      }
      await rt.destroy(badMem.id);
      await rt.destroy(badDisk.id);
      await rt.destroy(bad.id);
      expect(await shellOk(rt, neighbour.id, 'echo still-fine')).toBe('still-fine\n');
    });
  });
}
