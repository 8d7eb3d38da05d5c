import type { RejectConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { SshConnection } from './connection.js';

/**
 * `direct-tcpip` (`ssh -L local:host:port`): a stream to `port` inside the sandbox. The
 * destination host is not looked at — every destination is the sandbox itself, so a client
 * cannot reach the server's network through it. Ports outside 1–65535, a sandbox that is not
 * running and a port nothing listens on are refused (the client sees "open failed").
 */
export async function forwardTcp(
  conn: SshConnection,
  /** Accepts the channel; null when the connection may hold no more channels now. */
  accept: () => ServerChannel | null | undefined,
  reject: RejectConnection,
  info: TcpipRequestInfo,
): Promise<void> {
  const port = info.destPort;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) return reject();
  let socket: Awaited<ReturnType<typeof conn.app.sandboxes.runtime.connect>>;
  try {
    if ((await conn.unavailable()) !== null) return reject();
    socket = await conn.app.sandboxes.runtime.connect(conn.sandboxId, port);
  } catch {
    return reject();
  }
  const channel = accept();
  if (!channel) {
    socket.destroy();
    return reject();
  }
  const forget = conn.onClose(() => {
    socket.destroy();
    channel.destroy();
  });
  const onTraffic = () => conn.touch();
  socket.on('data', onTraffic);
  channel.on('data', onTraffic);
  socket.pipe(channel);
  channel.pipe(socket);
  socket.on('error', () => channel.destroy());
  channel.on('error', () => socket.destroy());
  socket.on('close', () => {
    forget();
    channel.end();
  });
  channel.on('close', () => {
    forget();
    socket.destroy();
  });
}
