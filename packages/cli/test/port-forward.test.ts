import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { dirname, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sdk/src/index.js';
import { Corral } from '../../sdk/src/node.js';
import { type SdkTestServer, startServer, waitFor } from '../../sdk/test/support/server.js';
import { freePort } from '../../server/test/support/services.js';
import { type CliEnv, MAIN, tempConfigHome } from './support.js';

const APP = "require('node:http').createServer((q, s) => s.end('hello from ' + q.url)).listen(3000)";

/**
 * The arguments that run `corral …` from the built CLI: main.js once it registers
 * port-forward, else a two-line program around the built command module.
 */
async function cliArgs(args: string[]): Promise<string[]> {
  if ((await readFile(MAIN, 'utf8')).includes('portForwardCommand')) return [MAIN, ...args];
  const dist = dirname(MAIN);
  const program = `
    import { Command } from 'commander';
    import { report } from '${resolve(dist, 'command.js')}';
    import { portForwardCommand } from '${resolve(dist, 'commands/port-forward.js')}';
    const program = new Command('corral').exitOverride();
    portForwardCommand(program);
    try { await program.parseAsync(process.argv.slice(1), { from: 'user' }); }
    catch (err) { process.exitCode = report(err); }`;
  return ['--input-type=module', '-e', program, ...args];
}

/** A running `corral port-forward`: its output so far, and its exit. */
interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

async function start(env: CliEnv, args: string[]): Promise<Running> {
  const { CORRAL_URL: _u, CORRAL_API_KEY: _k, ...base } = process.env;
  const child = spawn(process.execPath, await cliArgs(args), {
    env: { ...base, ...env },
    cwd: resolve(dirname(MAIN), '..'),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const running: Running = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((done) => child.on('close', (code) => done(code))),
  };
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    running.stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    running.stderr += d;
  });
  return running;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('corral port-forward against a real server', () => {
  let server: SdkTestServer;
  let env: CliEnv;
  let box: Sandbox;
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    server = await startServer();
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    box = await new Corral({ baseUrl: server.url, apiKey: key }).sandboxes.create({ template: 'nodejs' });
    const started = await box.exec('sh', [
      '-c',
      `setsid nohup node -e "${APP}" >/dev/null 2>&1 </dev/null &`,
    ]);
    expect(started.exitCode).toBe(0);
    await waitFor(async () => (await box.ports()).some((p) => p.port === 3000 && p.listening), 'port 3000');
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await box?.destroy().catch(() => {});
    await server?.close();
  });

  it('forwards a local port until Ctrl-C: a real HTTP request goes through', async () => {
    const local = await freePort();
    const run = await start(env, ['port-forward', box.id, '3000', '--local', String(local)]);
    children.push(run.child);
    await waitFor(
      async () => run.stdout.includes('\n') || run.child.exitCode !== null,
      'the Forwarding line',
    );
    expect(run.stdout).toBe(`Forwarding 127.0.0.1:${local} -> ${box.id}:3000\n`);
    expect(await httpGet(local, '/through-cli')).toEqual({ status: 200, body: 'hello from /through-cli' });
    expect(await httpGet(local, '/again')).toEqual({ status: 200, body: 'hello from /again' });
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.stderr).toBe('');
    await expect(httpGet(local, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a port nothing listens on, an unknown sandbox and a bad port are errors with exit 1', async () => {
    const run = async (args: string[]) => {
      const r = await start(env, args);
      children.push(r.child);
      return { code: await r.exited, stdout: r.stdout, stderr: r.stderr };
    };
    const silent = await run(['port-forward', box.id, '7072']);
    expect(silent.code).toBe(1);
    expect(silent.stderr).toContain(`Nothing listens on port 7072 in ${box.id}`);
    expect(silent.stdout).toBe('');

    const missing = await run(['port-forward', 'sbx_doesnotexist', '3000']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SANDBOX_NOT_FOUND');

    const bad = await run(['port-forward', box.id, '70000']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Not a port');
  });
});
