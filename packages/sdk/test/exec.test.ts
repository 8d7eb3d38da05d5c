import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Corral, InvalidStateError, type Sandbox, ValidationError } from '../src/index.js';
import { type SdkTestServer, startServer, waitFor } from './support/server.js';

describe('sdk: exec', () => {
  let server: SdkTestServer;
  let corral: Corral;
  let box: Sandbox;

  beforeAll(async () => {
    server = await startServer();
    corral = await server.client();
    box = await corral.sandboxes.create({ template: 'python' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('runs a command and answers its exit code and output', async () => {
    const result = await box.exec('python3', [
      '-c',
      'import sys; print(1); print("err", file=sys.stderr); sys.exit(3)',
    ]);
    expect(result).toMatchObject({ exitCode: 3, stdout: '1\n', stderr: 'err\n', timedOut: false });
    expect(result.truncated).toEqual({ stdout: false, stderr: false });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('passes env, cwd, stdin and a timeout', async () => {
    const result = await box.exec('sh', ['-c', 'echo "$GREETING $(pwd)"; cat'], {
      env: { GREETING: 'hello' },
      cwd: '/tmp',
      stdin: 'from stdin',
    });
    expect(result.stdout).toBe('hello /tmp\nfrom stdin');
    const slow = await box.exec('sleep', ['30'], { timeoutSeconds: 0.5 });
    expect(slow.timedOut).toBe(true);
  });

  it('streams output as an async iterator, then wait() has the exit', async () => {
    const stream = await box.execStream('sh', ['-c', 'echo one; echo two >&2; echo three']);
    expect(stream.pid).toBeGreaterThan(0);
    const events: { type: string; data: string }[] = [];
    for await (const event of stream) events.push(event);
    const stdout = events
      .filter((e) => e.type === 'stdout')
      .map((e) => e.data)
      .join('');
    const stderr = events
      .filter((e) => e.type === 'stderr')
      .map((e) => e.data)
      .join('');
    expect(stdout).toBe('one\nthree\n');
    expect(stderr).toBe('two\n');
    expect(await stream.wait()).toMatchObject({ exitCode: 0, timedOut: false });
  });

  it('streams to callbacks with stdin, and wait() alone reads the whole stream', async () => {
    let out = '';
    let err = '';
    const stream = await box.execStream('sh', ['-c', 'cat; echo bad >&2; exit 7'], {
      stdin: 'piped in\n',
      onStdout: (data) => {
        out += data;
      },
      onStderr: (data) => {
        err += data;
      },
    });
    const exit = await stream.wait();
    expect(exit.exitCode).toBe(7);
    expect(out).toBe('piped in\n');
    expect(err).toBe('bad\n');
    expect(() => stream[Symbol.asyncIterator]()).toThrow(/only once/);
  });

  it('kill() signals the command; the stream ends with its exit', async () => {
    const stream = await box.execStream('sleep', ['600'], { timeoutSeconds: 0 });
    expect((await box.processes.list()).map((p) => p.pid)).toContain(stream.pid);
    await stream.kill();
    const exit = await stream.wait();
    expect(exit.exitCode).toBe(137);
  });

  it('aborting the signal drops the stream and the server kills the command', async () => {
    const controller = new AbortController();
    const stream = await box.execStream('sleep', ['600'], { timeoutSeconds: 0, signal: controller.signal });
    expect((await box.processes.list()).map((p) => p.pid)).toContain(stream.pid);
    const waited = stream.wait();
    controller.abort();
    await expect(waited).rejects.toMatchObject({ name: 'AbortError' });
    await waitFor(
      async () => !(await box.processes.list()).some((p) => p.pid === stream.pid),
      'the aborted command to be gone',
    );
  });

  it('leaving the loop early closes the stream: the command is killed and wait() says so', async () => {
    const stream = await box.execStream('sh', ['-c', 'echo first; sleep 600'], { timeoutSeconds: 0 });
    for await (const event of stream) {
      expect(event).toEqual({ type: 'stdout', data: 'first\n' });
      break;
    }
    await expect(stream.wait()).rejects.toMatchObject({ code: 'EXEC_STREAM_CLOSED' });
    await waitFor(
      async () => !(await box.processes.list()).some((p) => p.pid === stream.pid),
      'the command to be gone',
    );
  });

  it('aborting a synchronous exec kills the command too', async () => {
    const controller = new AbortController();
    const pending = box.exec('sh', ['-c', 'echo marker-sync-abort; sleep 600'], {
      timeoutSeconds: 0,
      signal: controller.signal,
    });
    await waitFor(
      async () => (await box.processes.list()).some((p) => p.args.join(' ').includes('marker-sync-abort')),
      'the command to start',
    );
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await waitFor(
      async () => !(await box.processes.list()).some((p) => p.args.join(' ').includes('marker-sync-abort')),
      'the aborted command to be gone',
    );
  });

  it('processes.signal sends a signal to a started process', async () => {
    const stream = await box.execStream('sleep', ['600'], { timeoutSeconds: 0 });
    await box.processes.signal(stream.pid, 'SIGTERM');
    expect((await stream.wait()).exitCode).toBe(143);
  });

  it('maps exec errors to typed classes', async () => {
    await expect(box.exec('')).rejects.toBeInstanceOf(ValidationError);
    const stopped = await corral.sandboxes.create({ template: 'base' });
    await stopped.stop();
    const err = await stopped.exec('true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidStateError);
    expect(err).toMatchObject({ code: 'INVALID_STATE', status: 409 });
    expect((err as InvalidStateError).requestId).toMatch(/^req_/);
    await expect(stopped.execStream('true')).rejects.toBeInstanceOf(InvalidStateError);
    await stopped.destroy();
  });
});
