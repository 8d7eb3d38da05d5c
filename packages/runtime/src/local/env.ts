import { RuntimeError } from '../errors.js';
import type { ExecRequest, SandboxSpec } from '../interface.js';
import { SANDBOX_USER_GID, SANDBOX_USER_HOME, SANDBOX_USER_NAME, SANDBOX_USER_UID } from '../shared/ids.js';
import type { ExecArgs } from './exec.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The helper invocation for an exec/pty request: identity, and the environment a login would
 * give (HOME, USER, PATH, TERM) under the sandbox env, under the request env.
 */
export function buildExecArgs(spec: SandboxSpec, request: ExecRequest, tty: boolean): ExecArgs {
  if (typeof request.command !== 'string')
    throw new RuntimeError('INVALID_ARGUMENT', 'command must be a string');
  if (request.user !== undefined && request.user !== 'user' && request.user !== 'root') {
    throw new RuntimeError('INVALID_ARGUMENT', `user must be 'user' or 'root'`);
  }
  if (request.cwd !== undefined && !request.cwd.startsWith('/')) {
    throw new RuntimeError('INVALID_ARGUMENT', 'cwd must be an absolute path');
  }
  const root = request.user === 'root';
  const env: Record<string, string> = {
    PATH,
    HOME: root ? '/root' : SANDBOX_USER_HOME,
    USER: root ? 'root' : SANDBOX_USER_NAME,
    LOGNAME: root ? 'root' : SANDBOX_USER_NAME,
    SHELL: '/bin/bash',
    TERM: tty ? 'xterm-256color' : 'dumb',
    LANG: 'C.UTF-8',
    ...spec.env,
    ...request.env,
  };
  for (const [key, value] of Object.entries(env)) {
    if (key.includes('=') || key.includes('\0') || String(value).includes('\0')) {
      throw new RuntimeError('INVALID_ARGUMENT', `bad environment variable ${JSON.stringify(key)}`);
    }
  }
  // A pty with an empty command gets the user's login shell.
  const command = request.command === '' && tty ? '/bin/bash' : request.command;
  const args = request.command === '' && tty ? ['-l'] : (request.args ?? []);
  if (command === '') throw new RuntimeError('INVALID_ARGUMENT', 'command is empty');
  return {
    command,
    args,
    env,
    cwd: request.cwd,
    uid: root ? 0 : SANDBOX_USER_UID,
    gid: root ? 0 : SANDBOX_USER_GID,
    timeoutMs: request.timeoutMs ?? 0,
  };
}
