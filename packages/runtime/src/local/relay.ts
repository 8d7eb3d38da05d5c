import { spawn } from 'node:child_process';
import type { Duplex, Readable } from 'node:stream';
import { RuntimeError } from '../errors.js';
import { relayDuplex } from '../shared/process-duplex.js';
import type { SandboxEntry } from './exec.js';

/**
 * A byte stream to 127.0.0.1:`port` (or ::1) inside the sandbox's netns: one short-lived helper
 * per connection joins the netns, connects and splices between its stdio and the socket.
 */
export async function openRelay(entry: SandboxEntry, port: number): Promise<Duplex> {
  const child = spawn(
    entry.helper,
    [
      'relay',
      '--pid',
      String(entry.initPid),
      '--pid-start',
      entry.initStartTime,
      '--port',
      String(port),
      '--status-fd',
      '3',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const status = child.stdio[3] as Readable;
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const verdict = await new Promise<string>((resolve) => {
    let text = '';
    status.on('data', (chunk) => {
      text += String(chunk);
      if (text.includes('\n')) resolve(text.trim());
    });
    status.on('end', () => resolve(text.trim()));
    child.on('error', () => resolve('error'));
  });
  if (verdict !== 'ok') {
    child.kill('SIGKILL');
    if (verdict === 'refused') {
      throw new RuntimeError('PORT_NOT_LISTENING', `nothing listens on port ${port} in the sandbox`, {
        port,
      });
    }
    throw new RuntimeError('INTERNAL', `connect relay failed: ${stderr.trim() || verdict}`);
  }
  const exited = new Promise((resolve) => child.once('close', resolve));
  return relayDuplex({
    stdin: child.stdin,
    stdout: child.stdout,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
    exited,
  });
}
