import type { AddressInfo } from 'node:net';
import ssh2, { type Connection } from 'ssh2';
import type { App } from '../../app.js';
import { authenticate, type SshLogin } from './auth.js';
import { SshConnection } from './connection.js';
import { forwardTcp } from './forward.js';
import { loadOrCreateHostKey } from './host-key.js';
import { handleSession } from './session.js';

/** A connection must have logged in within this long (30 s). */
const LOGIN_DEADLINE_MS = 30_000;
/** Refused authentication attempts one connection may make before it is cut off. */
const MAX_FAILED_ATTEMPTS = 10;
/** Connections not yet logged in, at most (more are closed at once). */
const MAX_PENDING_LOGINS = 256;
/** Channels (sessions, forwards) one connection may hold open at once. */
export const MAX_CHANNELS_PER_CONNECTION = 64;
/** Keepalive probes every 30 s; a client silent for 3 of them is cut off (and its processes killed). */
const KEEPALIVE_INTERVAL_MS = 30_000;
const KEEPALIVE_COUNT_MAX = 3;

/** Where the gateway listens, and its host key (default: `<dataDir>/ssh/host_ed25519`). */
export interface SshGatewayOptions {
  port: number;
  host: string;
  /** An OpenSSH private key; tests pass one to leave the data directory alone. */
  hostKey?: string;
}

/** A listening gateway. */
export interface SshGateway {
  /** The port it listens on (the real one when started on port 0). */
  port: number;
  /** Stops listening and cuts every connection (killing what they started). */
  close(): Promise<void>;
}

/**
 * Starts the SSH gateway: `ssh -p <port> <token>@host` (or `<sandbox id>@host` with a
 * registered key) opens the sandbox — shell, commands, SFTP (`scp`, `sftp`) and `-L`
 * forwarding to its ports. Rejects when the port cannot be bound.
 */
export async function startSshGateway(app: App, options: SshGatewayOptions): Promise<SshGateway> {
  const hostKey = options.hostKey ?? loadOrCreateHostKey(app.config.dataDir);
  const clients = new Set<Connection>();
  let pending = 0;
  const server = new ssh2.Server(
    {
      hostKeys: [hostKey],
      ident: 'Corral',
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    },
    (client, info) => {
      clients.add(client);
      client.on('close', () => clients.delete(client));
      if (pending >= MAX_PENDING_LOGINS) {
        client.on('error', () => {});
        client.end();
        return;
      }
      pending++;
      let counted = true;
      const settle = () => {
        if (counted) pending--;
        counted = false;
      };
      client.once('ready', settle);
      client.once('close', settle);
      handleClient(app, client, info.ip);
    },
  );
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err: Error) => app.log.warn({ err }, 'ssh gateway error'));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const client of clients) client.end();
      }),
  };
}

/** Authentication, then the channels of one client connection. */
function handleClient(app: App, client: Connection, ip: string): void {
  let login: SshLogin | null = null;
  let connection: SshConnection | null = null;
  let failures = 0;
  const deadline = setTimeout(() => client.end(), LOGIN_DEADLINE_MS);
  deadline.unref();

  client.on('error', (err: Error) => app.log.debug({ err, ip }, 'ssh connection error'));
  client.on('authentication', (ctx) => {
    authenticate(app, ctx).then(
      (decision) => {
        if (decision.kind === 'accept') {
          login = decision.login;
          ctx.accept();
        } else if (decision.kind === 'key-ok') {
          ctx.accept();
        } else {
          ctx.reject(decision.methodsLeft);
          if (ctx.method !== 'none' && ++failures >= MAX_FAILED_ATTEMPTS) client.end();
        }
      },
      (err: unknown) => {
        app.log.warn({ err, ip }, 'ssh authentication failed with an error');
        try {
          ctx.reject();
        } catch {
          // already answered
        }
      },
    );
  });
  client.on('ready', () => {
    clearTimeout(deadline);
    if (!login) {
      client.end();
      return;
    }
    const conn = new SshConnection(app, login, ip, client);
    connection = conn;
    // Cut when its token or key ends (revoked, expired, deleted, access lost), here or elsewhere.
    const end = (reason: string) => conn.end(reason);
    conn.onClose(
      login.expiresAt !== null
        ? app.tokenConnections.track({ id: login.credentialId, expiresAt: login.expiresAt }, end)
        : app.tokenConnections.trackKey({ id: login.credentialId, sandboxId: login.sandboxId }, end),
    );
    app.log.info({ sandbox_id: login.sandboxId, via: login.via, ip }, 'ssh session opened');
    app.audit
      .record({
        workspaceId: login.workspaceId,
        actorType: login.actorType,
        actorId: login.actorId,
        action: 'sandbox.ssh.open',
        targetType: 'sandbox',
        targetId: login.sandboxId,
        ip,
        details:
          login.via === 'token'
            ? { via: 'token', token_id: login.credentialId }
            : { via: 'key', ssh_key_id: login.credentialId },
      })
      .catch((err: unknown) => app.log.warn({ err }, 'could not record the ssh login'));
    conn.touch();
    let channels = 0;
    /** Counts a channel until it closes; false (and the open refused) over the limit. */
    const admit = <T extends { once(event: 'close', fn: () => void): unknown }>(
      open: () => T | undefined,
    ) => {
      if (channels >= MAX_CHANNELS_PER_CONNECTION || conn.ended) return null;
      const channel = open();
      if (!channel) return null;
      channels++;
      channel.once('close', () => {
        channels--;
      });
      return channel;
    };
    client.on('session', (accept, reject) => {
      const session = channels < MAX_CHANNELS_PER_CONNECTION && !conn.ended ? admit(accept) : null;
      if (session) handleSession(conn, session);
      else reject();
    });
    client.on('tcpip', (accept, reject, info) => {
      if (channels >= MAX_CHANNELS_PER_CONNECTION || conn.ended) return reject();
      void forwardTcp(conn, () => admit(accept), reject, info);
    });
    client.on('request', (_accept, reject) => reject?.());
  });
  client.on('close', () => {
    clearTimeout(deadline);
    connection?.close();
  });
}
