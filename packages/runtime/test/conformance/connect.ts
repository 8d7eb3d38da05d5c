import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

// A line-echo server on loopback only, in perl-base (present in every Debian template).
const ECHO_SERVER =
  'use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr=>"127.0.0.1", LocalPort=>7777, Listen=>5, ReuseAddr=>1) or die "$!"; while (my $c = $s->accept) { while (my $l = <$c>) { print $c "echo:$l" } close $c }';

// Answers one line with a 64 KiB reply and closes at once: the reply must never be lost to the close.
const ANSWER_AND_CLOSE_SERVER =
  'use IO::Socket::INET; $SIG{PIPE} = "IGNORE"; my $s = IO::Socket::INET->new(LocalAddr=>"127.0.0.1", LocalPort=>7779, Listen=>64, ReuseAddr=>1) or die "$!"; while (my $c = $s->accept) { my $l = <$c>; chomp $l; print $c "re:$l:" . ("x" x 65536) . "\\n"; close $c }';

/** Sends `line`, then reads until the stream ends; what came back. */
function exchange(stream: Duplex, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    stream.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    stream.on('end', () => resolve(received));
    stream.on('error', reject);
    stream.write(`${line}\n`);
  });
}

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

    it('delivers every byte of an answer the app sends just before it closes, then ends and closes', async () => {
      const rt = ctx.runtime();
      const id = ctx.sharedSandbox();
      const server = await rt.exec(id, { command: 'perl', args: ['-e', ANSWER_AND_CLOSE_SERVER] });
      server.stdin.end();
      try {
        await waitFor('the server to listen', async () => (await rt.connect(id, 7779)).destroy());
        const expected = (n: number) => `re:q${n}:${'x'.repeat(65536)}\n`;
        // 48 exchanges, 8 at a time: the close races the reply on every one.
        for (let batch = 0; batch < 6; batch++) {
          const numbers = Array.from({ length: 8 }, (_, i) => batch * 8 + i);
          const answers = await Promise.all(
            numbers.map(async (n) => {
              const stream = await rt.connect(id, 7779);
              const closed = new Promise((resolve) => stream.on('close', resolve));
              const answer = await exchange(stream, `q${n}`);
              await closed;
              return answer;
            }),
          );
          answers.forEach((answer, i) => {
            expect(answer.length).toBe(expected(numbers[i]!).length);
            expect(answer === expected(numbers[i]!)).toBe(true);
          });
        }
      } finally {
        server.kill('SIGKILL');
        await server.wait();
      }
    });
  });
}
