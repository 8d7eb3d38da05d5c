import { describe, expect, it } from 'vitest';
import type { PtyProcess } from '../../src/interface.js';
import { waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';
import { describePtyFlow } from './pty-flow.js';

function capture(proc: PtyProcess): () => string {
  let text = '';
  proc.output.on('data', (chunk: Buffer | string) => {
    text += String(chunk);
  });
  return () => text;
}

/** PTY: an interactive shell as the sandbox user; resize reaches the terminal. */
export function describePty(ctx: ConformanceContext): void {
  describe('pty', () => {
    it('runs an interactive shell as the user and echoes input', async () => {
      const proc = await ctx
        .runtime()
        .pty(ctx.sharedSandbox(), { command: 'bash', args: ['-l'], cols: 80, rows: 24 });
      const output = capture(proc);
      proc.write('echo "sum=$((40+2)) uid=$(id -u) tty=$(tty)"\n');
      await waitFor('the echo', async () =>
        /sum=42 uid=1000 tty=\/dev\/pts\/\d+/.test(output()) ? true : undefined,
      );
      proc.write('exit 5\n');
      expect((await proc.wait()).exitCode).toBe(5);
    });

    it('resize changes what stty size reports', async () => {
      const proc = await ctx.runtime().pty(ctx.sharedSandbox(), { command: 'bash', cols: 80, rows: 24 });
      const output = capture(proc);
      proc.write('stty size\n');
      await waitFor('24 80', async () => (output().includes('24 80') ? true : undefined));
      proc.resize(132, 43);
      // A resize reaches the terminal asynchronously (gVisor relays it through runsc and
      // `script`, a path apart from the input's), as SIGWINCH does for any terminal: ask again
      // until the new size shows. The test still fails when a resize never arrives.
      let asked = 0;
      await waitFor('43 132', async () => {
        if (output().includes('43 132')) return true;
        if (asked++ % 10 === 0) proc.write('stty size\n');
        return undefined;
      });
      proc.kill('SIGKILL');
      expect((await proc.wait()).signal).toBe('SIGKILL');
    });

    it('a shell whose sandbox is destroyed under it ends by a signal, not exit 0', async () => {
      const rt = ctx.runtime();
      const spec = ctx.spec('pty-destroyed');
      await rt.create(spec);
      try {
        const proc = await rt.pty(spec.id, { command: 'bash', cols: 80, rows: 24 });
        const output = capture(proc);
        proc.write('echo up-$((6*7))\n');
        await waitFor('the shell', async () => (output().includes('up-42') ? true : undefined));
        await rt.destroy(spec.id);
        const status = await proc.wait();
        expect(status.signal).not.toBeNull();
        expect(status.exitCode).toBeGreaterThan(128);
      } finally {
        await rt.destroy(spec.id);
      }
    });
  });
  describePtyFlow(ctx);
}
