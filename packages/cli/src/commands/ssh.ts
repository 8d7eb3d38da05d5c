import { spawn } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { standard } from '../command.js';
import { client, configDir, resolveCredentials } from '../config.js';
import { CliError, EXIT } from '../errors.js';

/** An SSH token only has to live until the login; the session then lasts as long as ssh does. */
const LOGIN_TOKEN_TTL_SECONDS = 120;

/** What `POST /v1/sandboxes/{id}/tunnel {kind: 'ssh'}` answers. */
interface SshTunnel {
  id: string;
  token: string;
  expires_at: string;
  command?: string;
}

/** Where `corral ssh` pins the gateways' host keys (first use trusted, then checked). */
export function knownHostsPath(): string {
  return join(configDir(), 'known_hosts');
}

/** Port and host of the gateway from the answer's `ssh -p <port> <token>@<host>`, else from the server URL. */
export function gatewayAddress(
  command: string | undefined,
  serverUrl: string,
): { host: string; port: number } {
  const match = /-p (\d+) \S+@(\S+)\s*$/.exec(command ?? '');
  if (match) return { port: Number(match[1]), host: match[2]! };
  return { port: 2222, host: new URL(serverUrl).hostname.replace(/^\[(.*)\]$/, '$1') };
}

/** Mints a short-lived `ssh` token for sandbox `id` (404s and 403s as the API's error). */
async function mintSshToken(id: string): Promise<SshTunnel> {
  // The SDK's errors (not found, forbidden …) and their hints: resolve the sandbox through it first.
  await (await client()).sandboxes.get(id);
  const { url, apiKey } = await resolveCredentials();
  const res = await fetch(new URL(`/v1/sandboxes/${encodeURIComponent(id)}/tunnel`, url), {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'ssh', ttl_seconds: LOGIN_TOKEN_TTL_SECONDS }),
  });
  const body = (await res.json().catch(() => null)) as
    | (SshTunnel & { error?: { code: string; message: string } })
    | null;
  if (!res.ok || !body?.token) {
    const error = body?.error;
    throw new CliError(
      error
        ? `${error.message} [${error.code}]`
        : `The server answered ${res.status} to the SSH token request.`,
      res.status === 403
        ? 'SSH needs role developer and a key with scope sandbox:exec'
        : 'is the SSH gateway on? (CORRAL_SSH_PORT on the server; 0 turns it off)',
    );
  }
  return body;
}

/**
 * `corral ssh <sandbox> [-- command…]`: logs in to the sandbox through the server's SSH gateway
 * with the system `ssh` (stdio inherited, its exit code returned): a short-lived `ssh` token is
 * the user name, the gateway's host key is pinned in `~/.config/corral/known_hosts` on first use.
 */
export function sshCommand(program: Command): void {
  standard(
    program
      .command('ssh')
      .argument('<sandbox-id>')
      .argument('[command...]', 'run this instead of a login shell (after --)')
      .option(
        '-L, --forward <[bind:]port:host:hostport>',
        'forward a local port to a port inside the sandbox (as ssh -L; repeatable)',
        (spec: string, all: string[] = []) => [...all, spec],
      )
      .option('-N', 'no shell or command: only forward ports')
      .description("SSH into a sandbox through the server's SSH gateway (uses the system ssh)"),
    [
      'corral ssh sbx_…',
      'corral ssh sbx_… -- uname -a',
      'corral ssh sbx_… -N -L 3000:localhost:3000   # then http://localhost:3000',
    ],
    false,
  )
    .addHelpText(
      'after',
      `
Each run mints a short-lived ssh token as the login (no key needed). To use plain ssh, scp,
sftp or an editor's remote mode instead, register your public key once with
\`corral ssh-key add\`: then \`ssh -p <gateway port> <sandbox-id>@<server host>\` logs in with it.
`,
    )
    .action(async (id: string, command: string[], opts: { forward?: string[]; N?: boolean }) => {
      const tunnel = await mintSshToken(id);
      const { url } = await resolveCredentials();
      const { host, port } = gatewayAddress(tunnel.command, url);
      await mkdir(configDir(), { recursive: true, mode: 0o700 });
      await chmod(configDir(), 0o700);
      const args = [
        '-p',
        String(port),
        '-o',
        'StrictHostKeyChecking=accept-new',
        '-o',
        `UserKnownHostsFile=${knownHostsPath()}`,
        // The token is the whole login: no keys offered, no password prompt.
        '-o',
        'PubkeyAuthentication=no',
        '-o',
        'PasswordAuthentication=no',
        '-o',
        'KbdInteractiveAuthentication=no',
        ...(opts.forward ?? []).flatMap((spec) => ['-L', spec]),
        ...(opts.N ? ['-N'] : []),
        `${tunnel.token}@${host}`,
        ...command,
      ];
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn('ssh', args, { stdio: 'inherit' });
        child.once('error', (err: NodeJS.ErrnoException) =>
          reject(
            err.code === 'ENOENT'
              ? new CliError(
                  'ssh is not installed here.',
                  `install OpenSSH, or use \`corral shell ${id}\``,
                  EXIT.unsupported,
                )
              : err,
          ),
        );
        child.once('exit', (exitCode, signal) =>
          resolve(exitCode ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)),
        );
      });
      process.exitCode = code;
    });
}
