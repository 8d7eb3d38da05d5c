import type { PortInfo } from '../interface.js';
import { type ExecFn, runChecked } from './files-run.js';

/** TCP state LISTEN in /proc/net/tcp{,6}. */
const TCP_LISTEN = '0A';

// Runs as root inside the sandbox (to see every process's fds), in one process plus one find:
// the socket tables, then `pid inode` for each socket fd, then `pid comm` for each process.
const PORTS_SCRIPT = `
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
printf '@fds\\n'
find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname 'socket:*' -printf '%h %l\\n' 2>/dev/null
printf '@comm\\n'
for d in /proc/[0-9]*; do
  if read -r c < "$d/comm"; then printf '%s %s\\n' "\${d#/proc/}" "$c"; fi
done 2>/dev/null
exit 0`;

/**
 * Listening TCP ports inside a sandbox, with the owning process where one is found: reads
 * /proc/net/tcp and tcp6 in the sandbox's network namespace and matches socket inodes to
 * processes through /proc/PID/fd. Deduplicated and sorted by port, then address.
 */
export async function listPortsOverExec(exec: ExecFn, sandboxId: string): Promise<PortInfo[]> {
  // Root inside a sandbox may lack CAP_SYS_PTRACE, so it cannot read the user's /proc/PID/fd:
  // scan as both and merge (the socket tables are the same for both).
  const outputs = await Promise.all(
    (['root', 'user'] as const).map((user) =>
      runChecked(exec, sandboxId, user, PORTS_SCRIPT, [], { op: 'ports' }),
    ),
  );
  return parsePorts(outputs.map((out) => out.toString('utf8')).join('\n@tcp\n'));
}

/** Parse PORTS_SCRIPT's output (exported for tests). */
export function parsePorts(text: string): PortInfo[] {
  const sockets: Array<{ address: string; port: number; inode: string }> = [];
  const pidByInode = new Map<string, number>();
  const commByPid = new Map<number, string>();
  let section = 'tcp';
  for (const line of text.split('\n')) {
    if (line.startsWith('@')) {
      section = line.slice(1);
      continue;
    }
    if (section === 'tcp') {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      if (cols.length < 10 || cols[3] !== TCP_LISTEN) continue;
      const [hexAddress, hexPort] = cols[1]!.split(':') as [string, string];
      sockets.push({
        address: decodeAddress(hexAddress),
        port: Number.parseInt(hexPort, 16),
        inode: cols[9]!,
      });
    } else if (section === 'fds') {
      // "/proc/123/fd socket:[4567]"
      const match = /^\/proc\/(\d+)\/fd socket:\[(\d+)\]$/.exec(line);
      if (match && !pidByInode.has(match[2]!)) pidByInode.set(match[2]!, Number(match[1]));
    } else if (section === 'comm') {
      const space = line.indexOf(' ');
      if (space > 0) commByPid.set(Number(line.slice(0, space)), line.slice(space + 1));
    }
  }
  const seen = new Set<string>();
  const ports: PortInfo[] = [];
  for (const socket of sockets) {
    const key = `${socket.address} ${socket.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pid = pidByInode.get(socket.inode) ?? null;
    ports.push({
      port: socket.port,
      address: socket.address,
      protocol: 'tcp',
      process: pid === null ? null : (commByPid.get(pid) ?? null),
      pid,
    });
  }
  return ports.sort(
    (a, b) => a.port - b.port || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0),
  );
}

/** /proc/net/tcp addresses: 32-bit words in host (little-endian) byte order, in hex. */
export function decodeAddress(hex: string): string {
  const bytes: number[] = [];
  for (let word = 0; word < hex.length / 8; word++) {
    const value = Number.parseInt(hex.slice(word * 8, word * 8 + 8), 16);
    bytes.push(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24);
  }
  if (bytes.length === 4) return bytes.join('.');
  const isV4Mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isV4Mapped) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes[i]! * 256 + bytes[i + 1]!);
  return compressIpv6(groups);
}

// RFC 5952: drop leading zeros, replace the longest run (≥ 2) of zero groups with '::'.
function compressIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLength < 2) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}
