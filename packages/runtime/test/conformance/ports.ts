import { describe, expect, it } from 'vitest';
import type { PortInfo, Runtime } from '../../src/interface.js';
import { waitFor } from '../shared/sandbox-shell.js';

const LISTEN_ANY =
  'use IO::Socket::INET; $s=IO::Socket::INET->new(LocalPort=>8123,Listen=>5,ReuseAddr=>1) or die "$!"; sleep 600';
const LISTEN_LOOPBACK =
  'use IO::Socket::INET; $s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>8124,Listen=>5,ReuseAddr=>1) or die "$!"; sleep 600';

/** The `ports` section of the conformance suite: listening TCP ports inside a running sandbox. */
export function describePorts(getRuntime: () => Runtime, getSandboxId: () => string): void {
  describe('ports', () => {
    const find = (ports: PortInfo[], port: number) => ports.find((p) => p.port === port);

    it('lists a server started inside with its process, and drops it when it exits', async () => {
      const rt = getRuntime();
      const id = getSandboxId();
      // One server per user: the owning process must be found for the user's and root's alike.
      const servers = await Promise.all([
        rt.exec(id, { command: 'perl', args: ['-e', LISTEN_ANY], user: 'user' }),
        rt.exec(id, { command: 'perl', args: ['-e', LISTEN_LOOPBACK], user: 'root' }),
      ]);
      for (const server of servers) {
        server.stdin.end();
        server.stdout.resume();
        server.stderr.resume();
      }
      try {
        const ports = await waitFor('ports 8123 and 8124 to listen', async () => {
          const list = await rt.ports(id);
          return find(list, 8123) && find(list, 8124) ? list : undefined;
        });
        expect(find(ports, 8123)).toMatchObject({ address: '0.0.0.0', protocol: 'tcp', process: 'perl' });
        expect(find(ports, 8124)).toMatchObject({ address: '127.0.0.1', protocol: 'tcp', process: 'perl' });
        expect(find(ports, 8123)!.pid).toEqual(expect.any(Number));
        expect(find(ports, 8123)!.pid).not.toBe(find(ports, 8124)!.pid);
        const sorted = [...ports].sort((a, b) => a.port - b.port);
        expect(ports.map((p) => p.port)).toEqual(sorted.map((p) => p.port));
        const keys = ports.map((p) => `${p.address} ${p.port}`);
        expect(new Set(keys).size).toBe(keys.length);
      } finally {
        for (const server of servers) server.kill('SIGKILL');
        await Promise.all(servers.map((server) => server.wait()));
      }
      await waitFor('port 8123 to close', async () =>
        find(await rt.ports(id), 8123) === undefined ? true : undefined,
      );
    });
  });
}
