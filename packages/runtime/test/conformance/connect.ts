import { describe, expect, it } from 'vitest';
import { waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

// A line-echo server on loopback only, in perl-base (present in every Debian template).
const ECHO_SERVER =
  'use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr=>"127.0.0.1", LocalPort=>7777, Listen=>5, ReuseAddr=>1) or die "$!"; while (my $c = $s->accept) { while (my $l = <$c>) { print $c "echo:$l" } close $c }';

/** connect(): a byte stream to a port inside the sandbox, even one bound to its loopback. */
export function describeConnect(ctx: ConformanceContext): void {
  describe('connect', () => {
    it('streams bytes to a loopback-only server inside; refuses a closed port', async () => {
      const rt = ctx.runtime();
      const id = ctx.sharedSandbox();
      await expect(rt.connect(id, 7778)).rejects.toMatchObject({ code: 'PORT_NOT_LISTENING' });
      const server = await rt.exec(id, { command: 'perl', args: ['-e', ECHO_SERVER] });
      server.stdin.end();
      try {
        const stream = await waitFor('the server to listen', async () => rt.connect(id, 7777));
        let received = '';
        stream.on('data', (chunk: Buffer) => {
          received += chunk.toString();
        });
        stream.write('ping\n');
        await waitFor('the echo', async () => (received === 'echo:ping\n' ? true : undefined));
        const closed = new Promise((resolve) => stream.on('close', resolve));
        stream.end();
        await closed;
      } finally {
        server.kill('SIGKILL');
        await server.wait();
      }
    });
  });
}
