import { describe, expect, it } from 'vitest';
import type { ExecRequest, Runtime } from '../../src/interface.js';
import { readAll, shell, shellOk, waitFor } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

async function run(rt: Runtime, id: string, request: ExecRequest, input?: string) {
  const proc = await rt.exec(id, request);
  proc.stdin.end(input);
  const [stdout, stderr, status] = await Promise.all([
    readAll(proc.stdout),
    readAll(proc.stderr),
    proc.wait(),
  ]);
  return { ...status, stdout: stdout.toString(), stderr: stderr.toString() };
}

/** exec: streams, exit codes, env, cwd, users, stdin, timeouts, signals, large output, background work. */
export function describeExec(ctx: ConformanceContext): void {
  describe('exec', () => {
    const rt = () => ctx.runtime();
    const id = () => ctx.sharedSandbox();

    it('separates stdout and stderr and reports the exit code', async () => {
      const r = await run(rt(), id(), { command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 7'] });
      expect(r).toMatchObject({
        stdout: 'out\n',
        stderr: 'err\n',
        exitCode: 7,
        signal: null,
        timedOut: false,
      });
    });

    it('keeps the output of a finished process for a reader that attaches late', async () => {
      const proc = await rt().exec(id(), { command: 'sh', args: ['-c', 'echo late-out; echo late-err >&2'] });
      proc.stdin.end();
      // The process has exited (it is gone from the process list) before anyone reads.
      await waitFor('the process to leave the list', async () =>
        (await rt().processes(id())).some((p) => p.pid === proc.pid) ? undefined : true,
      );
      const [stdout, stderr, status] = await Promise.all([
        readAll(proc.stdout),
        readAll(proc.stderr),
        proc.wait(),
      ]);
      expect(stdout.toString()).toBe('late-out\n');
      expect(stderr.toString()).toBe('late-err\n');
      expect(status.exitCode).toBe(0);
    });

    it('reports a missing command as exit 127', async () => {
      const r = await run(rt(), id(), { command: 'no-such-command-xyz' });
      expect(r.exitCode).toBe(127);
    });

    it('merges the request env over the sandbox env, with sane HOME, USER, PATH', async () => {
      const r = await run(rt(), id(), {
        command: 'sh',
        args: ['-c', 'echo "$CONFORMANCE $EXTRA $HOME $USER"; echo "$PATH"'],
        env: { EXTRA: 'x y' },
      });
      expect(r.stdout.split('\n')[0]).toBe('yes x y /home/user user');
      expect(r.stdout.split('\n')[1]).toContain('/usr/bin');
      const over = await run(rt(), id(), {
        command: 'sh',
        args: ['-c', 'echo $CONFORMANCE'],
        env: { CONFORMANCE: 'no' },
      });
      expect(over.stdout).toBe('no\n');
    });

    it('runs in the requested cwd, else the home directory', async () => {
      expect((await run(rt(), id(), { command: 'pwd', cwd: '/tmp' })).stdout).toBe('/tmp\n');
      expect((await run(rt(), id(), { command: 'pwd' })).stdout).toBe('/home/user\n');
    });

    it('runs as the sandbox user by default and as root on request', async () => {
      expect((await run(rt(), id(), { command: 'id', args: ['-u'] })).stdout).toBe('1000\n');
      expect((await run(rt(), id(), { command: 'id', args: ['-u'], user: 'root' })).stdout).toBe('0\n');
      const sudo = await run(rt(), id(), { command: 'sudo', args: ['-n', 'id', '-u'] });
      if (rt().features.setuid) {
        expect(sudo.stdout).toBe('0\n');
      } else {
        // no_new_privs is forced (gVisor): sudo must fail and grant nothing.
        expect(sudo.exitCode).not.toBe(0);
        expect(sudo.stdout).not.toBe('0\n');
      }
    });

    it('feeds stdin', async () => {
      const r = await run(
        rt(),
        id(),
        { command: 'sh', args: ['-c', 'tr a-z A-Z; echo done'] },
        'hello\nworld\n',
      );
      expect(r.stdout).toBe('HELLO\nWORLD\ndone\n');
    });

    it('kills the whole process tree on timeout', async () => {
      const marker = `tree-${Date.now()}`;
      const started = Date.now();
      const r = await run(rt(), id(), {
        command: 'sh',
        args: ['-c', `sleep 100 & sleep 100; echo ${marker}`],
        timeoutMs: 500,
      });
      expect(r.timedOut).toBe(true);
      expect(r.signal).toBe('SIGKILL');
      expect(Date.now() - started).toBeLessThan(10_000);
      await waitFor('both sleeps to be gone', async () =>
        (await shell(rt(), id(), 'pgrep -fx "sleep 100"')).exitCode === 1 ? true : undefined,
      );
    });

    it('lists API-started processes and delivers signals to them', async () => {
      const proc = await rt().exec(id(), { command: 'sleep', args: ['300'] });
      proc.stdin.end();
      const listed = await rt().processes(id());
      expect(listed.find((p) => p.pid === proc.pid)).toMatchObject({
        command: 'sleep',
        args: ['300'],
        tty: false,
      });
      await rt().signal(id(), proc.pid, 'SIGTERM');
      expect(await proc.wait()).toMatchObject({ exitCode: 143, signal: 'SIGTERM', timedOut: false });
      await waitFor('the process to leave the list', async () =>
        (await rt().processes(id())).some((p) => p.pid === proc.pid) ? undefined : true,
      );
      await expect(rt().signal(id(), proc.pid, 'SIGTERM')).rejects.toMatchObject({
        code: 'PROCESS_NOT_FOUND',
      });
    });

    it('kill() signals the tree', async () => {
      const proc = await rt().exec(id(), { command: 'sh', args: ['-c', 'sleep 200 & wait'] });
      proc.stdin.end();
      proc.kill('SIGKILL');
      expect((await proc.wait()).signal).toBe('SIGKILL');
    });

    it('streams 50 MiB of output', async () => {
      const proc = await rt().exec(id(), {
        command: 'head',
        args: ['-c', String(50 * 1024 * 1024), '/dev/zero'],
      });
      proc.stdin.end();
      let bytes = 0;
      proc.stdout.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      expect((await proc.wait()).exitCode).toBe(0);
      expect(bytes).toBe(50 * 1024 * 1024);
    });

    it('leaves no zombies behind background children that held the output', async () => {
      for (let i = 0; i < 3; i++) {
        expect(
          (await run(rt(), id(), { command: 'sh', args: ['-c', 'sleep 0.3 & echo started'] })).stdout,
        ).toBe('started\n');
      }
      await waitFor('the background work to end without zombies', async () => {
        const ps = await shellOk(rt(), id(), 'ps -eo stat=,comm= | grep -v "ps$"');
        return /sleep/.test(ps) || /^Z/m.test(ps) ? undefined : true;
      });
    });

    it('returns when the command exits even if a background child holds its output, and the child keeps running', async () => {
      const started = Date.now();
      const r = await run(rt(), id(), {
        command: 'sh',
        args: ['-c', '(sleep 3; echo late) & sleep 987 & echo early'],
      });
      expect(r.stdout).toBe('early\n');
      expect(Date.now() - started).toBeLessThan(2_500);
      expect(await shellOk(rt(), id(), 'pgrep -fx "sleep 987" >/dev/null && echo alive')).toBe('alive\n');
      await shellOk(rt(), id(), 'pkill -fx "sleep 987"; true');
    });
  });
}
