import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SdkTestServer, startServer, waitFor } from '../../sdk/test/support/server.js';
import { type CliEnv, corral, corralJson, MAIN, tempConfigHome } from './support.js';

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('corral CLI against a real server', () => {
  let server: SdkTestServer;
  let env: CliEnv;
  let id: string;

  beforeAll(async () => {
    server = await startServer();
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    const created = await corralJson<{ id: string; status: string }>(env, [
      'sandbox',
      'create',
      '--name',
      'cli-test',
      '--metadata',
      'suite=cli',
      '--env',
      'GREETING=hello',
    ]);
    expect(created.status).toBe('running');
    id = created.id;
  });

  afterAll(async () => {
    await server?.close();
  });

  it('login checks the key and writes a 0600 config in a 0700 dir; whoami and logout use it', async () => {
    const { key } = await server.newKey();
    const home = await tempConfigHome();
    const login = await corral({ XDG_CONFIG_HOME: home }, ['login', '--url', server.url, '--key', key]);
    expect(login.stderr).toContain('Logged in');
    expect(login.code).toBe(0);
    const path = join(home, 'corral', 'config.json');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, 'corral'))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ url: server.url, api_key: key });
    const me = await corralJson<{ user: { email: string }; source: string }>({ XDG_CONFIG_HOME: home }, [
      'whoami',
    ]);
    expect(me.source).toBe(path);
    // CORRAL_API_KEY wins over the file.
    const overridden = await corral({ XDG_CONFIG_HOME: home, CORRAL_API_KEY: 'crl_sk_wrong' }, ['whoami']);
    expect(overridden.code).toBe(1);
    expect(overridden.stderr).toContain('UNAUTHORIZED');
    expect((await corral({ XDG_CONFIG_HOME: home }, ['logout'])).code).toBe(0);
    const after = await corral({ XDG_CONFIG_HOME: home }, ['whoami']);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('corral login');
  });

  it('login refuses a bad key and stores nothing; the key can come from stdin', async () => {
    const home = await tempConfigHome();
    const bad = await corral({ XDG_CONFIG_HOME: home }, [
      'login',
      '--url',
      server.url,
      '--key',
      'crl_sk_nope',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('corral login');
    await expect(stat(join(home, 'corral', 'config.json'))).rejects.toThrow();
    const { key } = await server.newKey();
    const piped = await corral({ XDG_CONFIG_HOME: home }, ['login', '--url', server.url], `${key}\n`);
    expect(piped.code).toBe(0);
    // Both answers piped (a fresh config: the URL cannot come from a stored one).
    const fresh = await tempConfigHome();
    const both = await corral({ XDG_CONFIG_HOME: fresh }, ['login'], `${server.url}\n${key}\n`);
    expect(both.code).toBe(0);
    expect(JSON.parse(await readFile(join(fresh, 'corral', 'config.json'), 'utf8'))).toEqual({
      url: server.url,
      api_key: key,
    });
  });

  it('sandbox list and get parse as JSON; the table shows the sandbox', async () => {
    const list = await corralJson<{ id: string; metadata: Record<string, string> }[]>(env, [
      'sandbox',
      'list',
    ]);
    expect(list.map((s) => s.id)).toContain(id);
    const filtered = await corralJson<{ id: string }[]>(env, ['sb', 'ls', '--metadata', 'suite=none']);
    expect(filtered).toEqual([]);
    const got = await corralJson<{ id: string; name: string }>(env, ['sandbox', 'get', id]);
    expect(got.name).toBe('cli-test');
    const running = await corralJson<{ id: string }[]>(env, ['ls', '--status', 'running']);
    expect(running.map((s) => s.id)).toContain(id);
    const table = await corral(env, ['sb', 'ls']);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATUS/);
    expect(table.stdout).toContain(id);
  });

  it('a missing sandbox is one clear error line with the next step, exit 1', async () => {
    const r = await corral(env, ['sandbox', 'get', 'sbx_missing']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('SANDBOX_NOT_FOUND');
    expect(r.stderr).toContain('corral sandbox list');
    const exec = await corral(env, ['exec', 'sbx_missing', '--', 'true']);
    expect(exec.code).toBe(1);
    const down = await corral({ ...env, CORRAL_URL: 'http://127.0.0.1:1' }, ['sandbox', 'list']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('is the server running?');
  });

  it("exec streams output and exits with the command's exit code", async () => {
    const seven = await corral(env, ['exec', id, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(seven.code).toBe(7);
    expect(seven.stdout).toBe('out\n');
    expect(seven.stderr).toBe('err\n');
    const json = await corral(env, ['exec', '--json', id, '--', 'sh', '-c', 'echo j; exit 4']);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stdout)).toMatchObject({ exit_code: 4, stdout: 'j\n', stderr: '' });
    const ok = await corral(env, [
      'exec',
      id,
      '--env',
      'X=42',
      '--cwd',
      '/tmp',
      '--',
      'sh',
      '-c',
      'echo $X $GREETING $(pwd)',
    ]);
    expect(ok).toMatchObject({ code: 0, stdout: '42 hello /tmp\n' });
  });

  it('exec streams output as it is produced, and Ctrl-C (SIGINT) kills the remote command', async () => {
    const { CORRAL_URL: _u, CORRAL_API_KEY: _k, ...base } = process.env;
    const child = spawn(
      process.execPath,
      [MAIN, 'exec', id, '--', 'sh', '-c', 'echo first; sleep 30; echo never'],
      {
        env: { ...base, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    // 'first' arrives while the command still runs (the sleep holds it for 30 s).
    await waitFor(async () => stdout.includes('first'), 'the first line, streamed', 20_000);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stdout).toBe('first\n');
    const left = await corral(env, ['exec', id, '--', 'pgrep', '-x', 'sleep']);
    expect(left.code).toBe(1);
  });

  it('exec pipes standard input through', async () => {
    const r = await corral(env, ['exec', id, '--', 'sh', '-c', 'tr a-z A-Z; echo done'], 'piped in\n');
    expect(r).toMatchObject({ code: 0, stdout: 'PIPED IN\ndone\n' });
  });

  it('cp copies a file both ways and a directory both ways, byte for byte', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'corral-cp-'));
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    await writeFile(join(dir, 'blob.bin'), data);
    expect((await corral(env, ['cp', join(dir, 'blob.bin'), `${id}:/tmp/blob.bin`])).code).toBe(0);
    const remoteSum = await corral(env, ['exec', id, '--', 'sha256sum', '/tmp/blob.bin']);
    expect(remoteSum.stdout.split(' ')[0]).toBe(sha(data));
    const back = await corralJson<{ bytes: number }>(env, [
      'cp',
      `${id}:/tmp/blob.bin`,
      join(dir, 'back.bin'),
    ]);
    expect(back.bytes).toBe(data.length);
    expect(sha(await readFile(join(dir, 'back.bin')))).toBe(sha(data));

    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'sub'), { recursive: true });
    await writeFile(join(tree, 'a.txt'), 'alpha\n');
    await writeFile(join(tree, 'sub', 'b.bin'), data.subarray(0, 100_000));
    expect((await corral(env, ['cp', '-q', tree, `${id}:/tmp/tree`])).code).toBe(0);
    const listed = await corral(env, [
      'exec',
      id,
      '--',
      'sh',
      '-c',
      'cat /tmp/tree/a.txt; sha256sum /tmp/tree/sub/b.bin',
    ]);
    expect(listed.stdout).toContain('alpha\n');
    expect(listed.stdout).toContain(sha(data.subarray(0, 100_000)));
    expect((await corral(env, ['cp', `${id}:/tmp/tree`, join(dir, 'tree-back')])).code).toBe(0);
    expect(await readFile(join(dir, 'tree-back', 'a.txt'), 'utf8')).toBe('alpha\n');
    expect(sha(await readFile(join(dir, 'tree-back', 'sub', 'b.bin')))).toBe(sha(data.subarray(0, 100_000)));
  });

  it('env set, list and rm; the values reach exec', async () => {
    expect((await corral(env, ['env', 'set', id, 'TOKEN=s3cret', 'OTHER=1'])).code).toBe(0);
    const names = await corralJson<{ names: string[] }>(env, ['env', 'list', id]);
    expect(names.names).toEqual(expect.arrayContaining(['TOKEN', 'OTHER']));
    expect((await corral(env, ['exec', id, '--', 'sh', '-c', 'echo $TOKEN'])).stdout).toBe('s3cret\n');
    expect((await corral(env, ['env', 'rm', id, 'TOKEN'])).code).toBe(0);
    expect((await corralJson<{ names: string[] }>(env, ['env', 'list', id])).names).not.toContain('TOKEN');
  });

  /** A snapshot once it is ready (creation may finish in the background), as `snapshot list` shows it. */
  const waitForReady = async (snapshotId: string) => {
    type Snap = { id: string; status: string; size_bytes: number; sha256: string };
    let info: Snap | undefined;
    await waitFor(
      async () => {
        info = (await corralJson<Snap[]>(env, ['snapshot', 'list', id])).find((s) => s.id === snapshotId);
        return info?.status === 'ready';
      },
      'the snapshot to be ready',
      60_000,
    );
    return info as Snap;
  };

  it('snapshot create, list, download and restore; events and templates list and get', async () => {
    const snap = await corralJson<{ id: string; sandbox_id: string }>(env, [
      'snapshot',
      'create',
      id,
      '--name',
      'cli',
    ]);
    expect(snap.sandbox_id).toBe(id);
    const snaps = await corralJson<{ id: string }[]>(env, ['snapshot', 'list', id]);
    expect(snaps.map((s) => s.id)).toContain(snap.id);
    const dir = await mkdtemp(join(tmpdir(), 'corral-snap-'));
    const info = await waitForReady(snap.id);
    const out = join(dir, 'snap.tar');
    const downloaded = await corralJson<{ bytes: number }>(env, ['snapshot', 'download', snap.id, '-o', out]);
    expect(downloaded.bytes).toBe(info.size_bytes);
    expect(sha(await readFile(out))).toBe(info.sha256);
    const restored = await corralJson<{ id: string; status: string }>(env, ['snapshot', 'restore', snap.id]);
    expect(restored.id).not.toBe(id);
    expect((await corral(env, ['exec', restored.id, '--', 'true'])).code).toBe(0);
    expect((await corral(env, ['sandbox', 'rm', restored.id])).code).toBe(0);
    const events = await corralJson<{ action: string }[]>(env, ['events', id]);
    expect(events.map((e) => e.action)).toContain('sandbox.create');
    const templates = await corralJson<{ id: string; builtin: boolean }[]>(env, ['templates', 'list']);
    expect(templates.some((t) => t.builtin)).toBe(true);
    const base = await corralJson<{ id: string; builtin: boolean }>(env, ['templates', 'get', 'base']);
    expect(base).toMatchObject({ id: 'base', builtin: true });
  });

  it('apikeys create, list and revoke', async () => {
    const created = await corralJson<{ id: string; key: string }>(env, [
      'apikeys',
      'create',
      '--name',
      'ci',
      '--scope',
      'sandbox:read',
    ]);
    expect(created.key).toMatch(/^crl_sk_/);
    const listed = await corralJson<{ id: string; scopes: string[] }[]>(env, ['apikeys', 'list']);
    expect(listed.find((k) => k.id === created.id)?.scopes).toEqual(['sandbox:read']);
    expect((await corral(env, ['apikeys', 'revoke', created.id])).code).toBe(0);
    const readOnly = await corral({ ...env, CORRAL_API_KEY: created.key }, ['sandbox', 'list']);
    expect(readOnly.code).toBe(1);
  });

  it('ports, open and ssh', async () => {
    const open = await corralJson<{ url: string }>(env, ['open', id, '3000']);
    expect(open.url).toContain('3000');
    expect((await corral(env, ['ports', id])).code).toBe(0);
    const ssh = await corral(env, ['ssh', '--help']);
    expect(ssh.code).toBe(0);
    expect(ssh.stdout).toContain('SSH into a sandbox');
  });

  it('lifecycle and rm; a bad option is a usage error (exit 1); --help shows an example; completion prints a script', async () => {
    const stopped = await corralJson<{ status: string }>(env, ['sandbox', 'stop', id]);
    expect(stopped.status).toBe('stopped');
    const started = await corralJson<{ status: string }>(env, ['sandbox', 'start', id]);
    expect(started.status).toBe('running');
    expect(await corralJson(env, ['sandbox', 'rm', id])).toEqual({ removed: [id] });
    expect((await corral(env, ['sandbox', 'get', id])).code).toBe(1);
    expect((await corral(env, ['sandbox', 'create', '--network', 'sideways'])).code).toBe(1);
    const help = await corral(env, ['exec', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Examples:');
    // The installed bin (an executable shim) runs the same program.
    const bin = await promisify(execFile)(join(import.meta.dirname, '..', 'bin', 'corral.js'), ['--version']);
    expect(bin.stdout.trim()).toBe('0.1.0');
    const bash = await corral(env, ['completion', 'bash']);
    expect(bash.stdout).toContain('complete -o default -F _corral corral');
    // The script completes subcommands when bash runs it.
    const words = await promisify(execFile)('bash', [
      '-c',
      `${bash.stdout}\nCOMP_WORDS=(corral sb ""); COMP_CWORD=2; _corral; echo "\${COMPREPLY[@]}"`,
    ]);
    expect(words.stdout.split(' ')).toEqual(expect.arrayContaining(['create', 'list', 'rm', 'pause']));
  });
});
