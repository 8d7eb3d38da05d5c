import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SdkTestServer, startServer, waitFor } from '../../sdk/test/support/server.js';
import { type SshGateway, startSshGateway } from '../../server/src/services/ssh/gateway.js';
import { generateHostKeyPair } from '../../server/src/services/ssh/host-key.js';
import { freePort } from '../../server/test/support/services.js';
import { type CliEnv, corral, corralJson, MAIN, tempConfigHome } from './support.js';

describe('corral ssh, through the SSH gateway with the system ssh', () => {
  let server: SdkTestServer;
  let gateway: SshGateway;
  let sshPort: number;
  let env: CliEnv;
  let id: string;
  const hostKey = generateHostKeyPair();

  beforeAll(async () => {
    sshPort = await freePort();
    server = await startServer({ sshPort });
    gateway = await startSshGateway(server.test.app, {
      port: sshPort,
      host: '127.0.0.1',
      hostKey: hostKey.private,
    });
    const { key } = await server.newKey();
    env = { CORRAL_URL: server.url, CORRAL_API_KEY: key, XDG_CONFIG_HOME: await tempConfigHome() };
    id = (await corralJson<{ id: string }>(env, ['sandbox', 'create'])).id;
  });

  afterAll(async () => {
    await gateway?.close();
    await server?.close();
  });

  it('runs a command: its output and exit code; the host key is pinned in the config dir', async () => {
    const ran = await corral(env, ['ssh', id, '--', 'echo hi-$((6*7)); echo oops >&2; exit 3']);
    expect(ran.stdout).toBe('hi-42\n');
    expect(ran.stderr).toContain('oops\n');
    expect(ran.code).toBe(3);
    const pinned = await readFile(join(env.XDG_CONFIG_HOME, 'corral', 'known_hosts'), 'utf8');
    // One line (the host name may be hashed, as Debian's ssh_config asks), with this key.
    expect(pinned.trim().split('\n')).toHaveLength(1);
    expect(pinned.trim().endsWith(` ${hostKey.public.split(' ').slice(0, 2).join(' ')}`)).toBe(true);
  });

  it('passes stdin through', async () => {
    const ran = await corral(env, ['ssh', id, '--', 'tr a-z A-Z'], 'piped in\n');
    expect(ran.stdout).toBe('PIPED IN\n');
    expect(ran.code).toBe(0);
  });

  it('forwards a local port into the sandbox with -N -L', async () => {
    const box = server.test.app.sandboxes.runtime;
    const listener = await box.exec(id, {
      command: 'perl',
      args: [
        '-MIO::Socket::INET',
        '-e',
        '$s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>8642,Listen=>5,ReuseAddr=>1) or die; while($c=$s->accept){print $c "HTTP/1.0 200 OK\\r\\n\\r\\ncli-forward-ok\\n"; close $c}',
      ],
    });
    const local = await freePort();
    const child = spawn(
      process.execPath,
      [MAIN, 'ssh', id, '-N', '-L', `127.0.0.1:${local}:localhost:8642`],
      {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      },
    );
    try {
      await waitFor(async () => (await box.ports(id)).some((p) => p.port === 8642), 'the listener', 20_000);
      let body = '';
      await waitFor(
        async () => {
          body = await fetch(`http://127.0.0.1:${local}/`).then(
            (r) => r.text(),
            () => '',
          );
          return body !== '';
        },
        'the forwarded port',
        20_000,
      );
      expect(body).toBe('cli-forward-ok\n');
    } finally {
      child.kill('SIGKILL');
      listener.kill('SIGKILL');
    }
  });

  it('refuses a gateway whose host key changed (ssh fails; nothing runs)', async () => {
    await gateway.close();
    gateway = await startSshGateway(server.test.app, {
      port: sshPort,
      host: '127.0.0.1',
      hostKey: generateHostKeyPair().private,
    });
    const ran = await corral(env, ['ssh', id, '--', 'echo should-not-run']);
    expect(ran.code).toBe(255);
    expect(ran.stdout).toBe('');
    expect(ran.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('reports an unknown sandbox as the API error, exit 1', async () => {
    const ran = await corral(env, ['ssh', 'sbx_nosuchsandbox', '--', 'true']);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/SANDBOX_NOT_FOUND/);
  });
});
