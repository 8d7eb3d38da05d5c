import type { Duplex } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type { ExecProcess, ExecRequest } from '../interface.js';
import { relayDuplex } from '../shared/process-duplex.js';

// The relay runs inside the sandbox: gVisor's loopback is its own netstack, unreachable from the
// host's side of the network namespace. bash's /dev/tcp connects; `K` says it did; when either
// direction ends, the whole process group goes (bash cannot half-close a socket).
const RELAY = `exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 111
printf K
{ cat <&3; kill -TERM -- -$$; } &
cat >&3
kill -TERM -- -$$`;

/** A byte stream to `port` on the sandbox's loopback, through a relay process inside it. */
export async function connectOverExec(
  exec: (request: ExecRequest) => Promise<ExecProcess>,
  port: number,
): Promise<Duplex> {
  const proc = await exec({
    command: '/bin/bash',
    args: ['-c', RELAY, 'corral-connect', String(port)],
    cwd: '/',
    env: { LC_ALL: 'C' },
  });
  const stdout = proc.stdout;
  const first = await new Promise<Buffer | null>((resolve) => {
    const onData = (chunk: Buffer) => {
      stdout.off('end', onEnd);
      stdout.pause();
      resolve(chunk);
    };
    const onEnd = () => resolve(null);
    stdout.once('data', onData);
    stdout.once('end', onEnd);
  });
  if (first === null || first[0] !== 0x4b /* K */) {
    proc.kill('SIGKILL');
    await proc.wait();
    throw new RuntimeError('PORT_NOT_LISTENING', `nothing listens on port ${port}`, { port });
  }
  return relayDuplex(
    {
      stdin: proc.stdin,
      stdout,
      kill: () => proc.kill('SIGKILL'),
      exited: proc.wait(),
    },
    first.subarray(1),
  );
}
