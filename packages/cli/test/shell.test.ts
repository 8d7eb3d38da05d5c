import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SdkTestServer, startServer, waitFor } from '../../sdk/test/support/server.js';
import { type CliEnv, corralJson, MAIN, tempConfigHome } from './support.js';

const run = promisify(execFile);

/** Single-quotes `value` for sh. */
const quote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

describe('corral shell, driven through tmux', () => {
  let server: SdkTestServer;
  let env: CliEnv;
  let id: string;
  const socket = `corral-test-${process.pid}`;
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, ...args]);
  const screen = async (session: string) => (await tmux('capture-pane', '-p', '-t', session)).stdout;
  const alive = async (session: string) =>
    tmux('has-session', '-t', session).then(
      () => true,
      () => false,
    );

  /** Keys typed before the CLI is in raw mode would be echoed and handled locally: wait for the remote prompt. */
  const prompt = (session: string) =>
    waitFor(async () => (await screen(session)).trim().length > 0, 'the remote prompt', 20_000);

  beforeAll(async () => {
    server = await startServer();
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    id = (await corralJson<{ id: string }>(env, ['sandbox', 'create'])).id;
    // tmux's server exits with its last session: a test's new-session could then race the dying
    // server ("server exited unexpectedly"). A session that outlives the tests keeps it up.
    await tmux('new-session', '-d', '-s', 'keeper', 'sleep 3600');
  });

  afterAll(async () => {
    await tmux('kill-server').catch(() => {});
    await server?.close();
  });

  it('types into the remote shell, resizes with the window, and exits with the shell, restoring the terminal', async () => {
    const session = 'sh1';
    const out = env.XDG_CONFIG_HOME;
    // After the CLI exits, the pane's shell records its exit code and the tty's mode, then ends.
    const script = [
      `env CORRAL_URL=${quote(env.CORRAL_URL ?? '')} CORRAL_API_KEY=${quote(env.CORRAL_API_KEY ?? '')}`,
      `${quote(process.execPath)} ${quote(MAIN)} shell ${id};`,
      `echo $? > ${quote(join(out, 'exit'))};`,
      `stty -a > ${quote(join(out, 'stty'))}`,
    ].join(' ');
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', script);
    await prompt(session);

    await tmux('send-keys', '-t', session, 'echo hi-$((6*7))', 'Enter');
    await waitFor(async () => (await screen(session)).includes('hi-42'), 'hi-42 on the screen', 20_000);

    await tmux('send-keys', '-t', session, 'stty size', 'Enter');
    await waitFor(async () => /^40 120\s*$/m.test(await screen(session)), 'the first size', 10_000);

    await tmux('resize-window', '-t', session, '-x', '100', '-y', '30');
    await tmux('send-keys', '-t', session, 'clear; stty size', 'Enter');
    await waitFor(async () => /^30 100\s*$/m.test(await screen(session)), '30 100 after resize', 10_000);

    await tmux('send-keys', '-t', session, 'exit 3', 'Enter');
    await waitFor(async () => !(await alive(session)), 'the tmux session to end', 10_000);
    expect((await readFile(join(out, 'exit'), 'utf8')).trim()).toBe('3');
    // Raw mode is off again: canonical input and echo are back.
    const stty = await readFile(join(out, 'stty'), 'utf8');
    expect(stty).toMatch(/(^|\s)icanon(\s|$)/);
    expect(stty).toMatch(/(^|\s)echo(\s|$)/);
  });

  it('when the sandbox goes away under it, the shell ends and the terminal is restored', async () => {
    const session = 'gone';
    const other = (await corralJson<{ id: string }>(env, ['sandbox', 'create'])).id;
    const out = await tempConfigHome();
    const script = [
      `env CORRAL_URL=${quote(env.CORRAL_URL ?? '')} CORRAL_API_KEY=${quote(env.CORRAL_API_KEY ?? '')}`,
      `${quote(process.execPath)} ${quote(MAIN)} shell ${other};`,
      `echo $? > ${quote(join(out, 'exit'))};`,
      `stty -a > ${quote(join(out, 'stty'))}`,
    ].join(' ');
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', script);
    await prompt(session);
    expect((await corralJson<{ removed: string[] }>(env, ['sandbox', 'rm', other])).removed).toEqual([other]);
    await waitFor(async () => !(await alive(session)), 'the tmux session to end', 20_000);
    // The CLI exited by itself (its code is what the server reports: today exit_code 0 for a destroyed sandbox).
    expect((await readFile(join(out, 'exit'), 'utf8')).trim()).toMatch(/^\d+$/);
    const stty = await readFile(join(out, 'stty'), 'utf8');
    expect(stty).toMatch(/(^|\s)icanon(\s|$)/);
    expect(stty).toMatch(/(^|\s)echo(\s|$)/);
  });

  it('login asks for the URL and key on a terminal, without echoing the key', async () => {
    const session = 'login';
    const home = await tempConfigHome();
    const { key } = await server.newKey();
    const script = `env -u CORRAL_URL -u CORRAL_API_KEY XDG_CONFIG_HOME=${quote(home)} ${quote(process.execPath)} ${quote(MAIN)} login; sleep 30`;
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', script);
    await waitFor(async () => (await screen(session)).includes('Server URL'), 'the URL prompt', 20_000);
    await tmux('send-keys', '-t', session, server.url, 'Enter');
    await waitFor(async () => (await screen(session)).includes('API key:'), 'the key prompt', 10_000);
    await tmux('send-keys', '-t', session, key, 'Enter');
    await waitFor(async () => (await screen(session)).includes('Logged in'), 'the login', 10_000);
    expect(await screen(session)).not.toContain(key);
    const stored = JSON.parse(await readFile(join(home, 'corral', 'config.json'), 'utf8'));
    expect(stored).toEqual({ url: server.url, api_key: key });
    await tmux('kill-session', '-t', session);
  });

  it('Ctrl-C goes to the remote shell (raw mode), not to the CLI', async () => {
    const session = 'sh2';
    const script = `env CORRAL_URL=${quote(env.CORRAL_URL ?? '')} CORRAL_API_KEY=${quote(env.CORRAL_API_KEY ?? '')} ${quote(process.execPath)} ${quote(MAIN)} shell ${id}`;
    await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', script);
    await prompt(session);
    await tmux('send-keys', '-t', session, 'sleep 100', 'Enter');
    await waitFor(async () => (await screen(session)).includes('sleep 100'), 'the sleep typed', 20_000);
    await tmux('send-keys', '-t', session, 'C-c');
    await tmux('send-keys', '-t', session, 'echo still-$((1+1))', 'Enter');
    await waitFor(async () => (await screen(session)).includes('still-2'), 'the shell after Ctrl-C', 10_000);
    expect(await alive(session)).toBe(true);
    await tmux('send-keys', '-t', session, 'exit', 'Enter');
    await waitFor(async () => !(await alive(session)), 'the tmux session to end', 10_000);
  });
});
