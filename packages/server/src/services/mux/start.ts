import type { Runtime } from '@corral/runtime';
import type { Channel, ChannelHost } from './channel.js';
import { ExecChannel, PtyChannel, TcpChannel } from './kinds.js';
import { clientWindowOf, type OpenRequest } from './open.js';

/** What starting a channel needs from the server. */
export interface StartDeps {
  sandboxId: string;
  runtime: () => Runtime;
  envFor: (sandboxId: string) => Promise<Record<string, string>>;
}

/**
 * Starts what an OPEN asks for in the sandbox: a command (the sandbox's secret env merged
 * under the request's), a terminal (a login shell as `user` unless a command is named) or a
 * TCP stream. The channel reads nothing until `begin()` (after OPEN_OK went out). Runtime
 * failures (a closed port, a stopped sandbox …) are thrown as they are.
 */
export async function startChannel(
  host: ChannelHost,
  id: number,
  request: OpenRequest,
  deps: StartDeps,
): Promise<Channel> {
  const window = clientWindowOf(request);
  const runtime = deps.runtime();
  const sandboxId = deps.sandboxId;
  if (request.type === 'tcp') {
    const socket = await runtime.connect(sandboxId, request.port);
    return new TcpChannel(host, id, window, socket);
  }
  const secretEnv = await deps.envFor(sandboxId);
  const common = {
    ...(request.cwd === undefined ? {} : { cwd: request.cwd }),
    user: request.user ?? 'user',
    timeoutMs: Math.round((request.timeout_seconds ?? 0) * 1000),
  } as const;
  if (request.type === 'exec') {
    const proc = await runtime.exec(sandboxId, {
      ...common,
      command: request.command,
      args: request.args ?? [],
      env: { ...secretEnv, ...request.env },
    });
    return new ExecChannel(host, id, window, proc);
  }
  const pty = await runtime.pty(sandboxId, {
    ...common,
    command: request.command ?? '/bin/bash',
    args: request.command === undefined ? ['-l'] : (request.args ?? []),
    env: { ...secretEnv, TERM: 'xterm-256color', ...request.env },
    cols: request.cols ?? 80,
    rows: request.rows ?? 24,
  });
  return new PtyChannel(host, id, window, pty);
}
