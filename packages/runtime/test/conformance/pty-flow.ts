import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PtyProcess } from '../../src/interface.js';
import { waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

/** What may sit in our buffers while the reader is paused: far below the program's output. */
const PAUSED_BOUND_BYTES = 512 * 1024;

function settled(promise: Promise<unknown>): () => boolean {
  let done = false;
  void promise.then(() => {
    done = true;
  });
  return () => done;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Every byte of `output` until it ends. */
function collect(proc: PtyProcess): { bytes: () => Buffer; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    proc.output.on('end', resolve);
    proc.output.on('error', reject);
  });
  proc.output.on('data', (chunk: Buffer) => chunks.push(Buffer.from(chunk)));
  return { bytes: () => Buffer.concat(chunks), ended };
}

/** `seq 1 n` as the program prints it. */
function seqText(n: number): string {
  const lines: string[] = [];
  for (let i = 1; i <= n; i++) lines.push(String(i));
  return `${lines.join('\n')}\n`;
}

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** PTY flow control: a slow reader holds the program back, loses nothing; input is binary-safe. */
export function describePtyFlow(ctx: ConformanceContext): void {
  describe('pty flow control', () => {
    it('a paused reader blocks the writer with bounded buffers, and every byte arrives', async () => {
      const lines = 1_200_000; // ~8.3 MB
      const proc = await ctx.runtime().pty(ctx.sharedSandbox(), {
        command: 'sh',
        args: ['-c', `stty raw -echo; seq 1 ${lines}; echo END`],
        cols: 80,
        rows: 24,
      });
      const exited = settled(proc.wait());
      const out = collect(proc);
      try {
        for (let round = 0; round < 3; round++) {
          proc.output.pause();
          const before = out.bytes().length;
          await sleep(700);
          // Paused: our side buffers little, the program cannot finish, nothing more arrives.
          expect(proc.output.readableLength).toBeLessThan(PAUSED_BOUND_BYTES);
          expect(exited()).toBe(false);
          expect(out.bytes().length).toBe(before);
          proc.output.resume();
          await sleep(50);
        }
        await out.ended;
        const expected = `${seqText(lines)}END\n`;
        const got = out.bytes();
        expect(got.length).toBe(Buffer.byteLength(expected));
        expect(sha(got)).toBe(sha(expected));
        expect((await proc.wait()).exitCode).toBe(0);
      } finally {
        proc.kill('SIGKILL');
        proc.output.destroy();
      }
    });

    it('output written before an exit nobody was reading is delivered in full', async () => {
      // Nobody reads until the program has exited: what it wrote (~7 KB, more than one read of
      // a pty master returns) waits in the terminal. Several rounds: losing the tail was a race.
      for (let round = 0; round < 5; round++) {
        const proc = await ctx.runtime().pty(ctx.sharedSandbox(), {
          command: 'sh',
          args: ['-c', 'stty raw -echo; seq 1 1700; echo END'],
          cols: 80,
          rows: 24,
        });
        try {
          expect((await proc.wait()).exitCode).toBe(0);
          await sleep(100);
          const out = collect(proc);
          await out.ended;
          expect(out.bytes().toString('latin1')).toBe(`${seqText(1700)}END\n`);
        } finally {
          proc.output.destroy();
        }
      }
    });

    it('a reader paused with a full buffer when the program exits still gets the tail', async () => {
      const lines = 14_000; // ~69 KB: more than our buffer holds, so the rest waits in the kernel
      const proc = await ctx.runtime().pty(ctx.sharedSandbox(), {
        command: 'sh',
        args: ['-c', `stty raw -echo; seq 1 ${lines}; echo END`],
        cols: 80,
        rows: 24,
      });
      try {
        const out = collect(proc);
        proc.output.pause();
        expect((await proc.wait()).exitCode).toBe(0);
        proc.output.resume();
        await out.ended;
        const expected = `${seqText(lines)}END\n`;
        expect(out.bytes().length).toBe(expected.length);
        expect(out.bytes().toString('latin1')).toBe(expected);
      } finally {
        proc.output.destroy();
      }
    });

    it('input bytes reach the program unchanged (0x80-0xff, not re-encoded)', async () => {
      const proc = await ctx.runtime().pty(ctx.sharedSandbox(), {
        command: 'sh',
        args: [
          '-c',
          'stty raw -echo; echo READY; head -c 128 | od -An -tx1 -v | tr -d " \\n"; echo; echo END',
        ],
        cols: 80,
        rows: 24,
      });
      try {
        let text = '';
        proc.output.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
        });
        await waitFor('READY', async () => (text.includes('READY') ? true : undefined));
        const bytes = new Uint8Array(128).map((_, i) => 0x80 + i);
        await proc.write(bytes);
        await waitFor('END', async () => (text.includes('END') ? true : undefined));
        const hex = Buffer.from(bytes).toString('hex');
        expect(text).toContain(hex);
        expect((await proc.wait()).exitCode).toBe(0);
      } finally {
        proc.kill('SIGKILL');
        proc.output.destroy();
      }
    });
  });
}
