import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';

/**
 * Test fixtures for the network suite: fake "hosts" in their own network namespaces (reached
 * from the host through a veth and a host route), a fake upstream DNS server on loopback, and
 * helpers to run commands inside a sandbox's netns. Nothing here sends a packet off the machine.
 */

/** Result of a command: exit code and output. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command (no shell) with a hard timeout; never rejects. */
export function sh(command: string, args: string[], timeoutMs = 10_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Run a command and throw on failure (fixture set-up). */
export async function must(command: string, args: string[]): Promise<string> {
  const result = await sh(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** The host-side address of every test host's point-to-point veth. */
export const HOST_PEER = '198.51.100.1';

const SERVER = `
const http = require('node:http');
const [port, body] = [Number(process.argv[1]), process.argv[2]];
http.createServer((_, res) => res.end(body)).listen(port, '0.0.0.0', () => console.log('ready'));
`;

/** A test "host": a netns owning `address`, serving `body` over HTTP on port 80. */
export interface TestHost {
  netns: string;
  address: string;
  body: string;
  server: ChildProcess;
}

/** Start a long-running `node -e SERVER` inside `netns`; resolves once it listens. */
export function serveIn(netns: string | null, port: number, body: string): Promise<ChildProcess> {
  const args = ['-e', SERVER, String(port), body];
  const child = netns
    ? spawn('ip', ['netns', 'exec', netns, process.execPath, ...args])
    : spawn(process.execPath, args);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server in ${netns} did not start`)), 10_000);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`server in ${netns} exited ${code}`)));
  });
}

/** Create netns `netns` with eth0 = `address`, a point-to-point veth `hostLink` to the host, and a server. */
export async function startTestHost(
  netns: string,
  hostLink: string,
  address: string,
  body: string,
): Promise<TestHost> {
  await must('ip', ['netns', 'add', netns]);
  await must('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await must('ip', ['addr', 'add', HOST_PEER, 'peer', `${address}/32`, 'dev', hostLink]);
  await must('ip', ['link', 'set', hostLink, 'up']);
  await must('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await must('ip', ['-n', netns, 'addr', 'add', address, 'peer', `${HOST_PEER}/32`, 'dev', 'eth0']);
  await must('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  await must('ip', ['-n', netns, 'route', 'add', 'default', 'via', HOST_PEER]);
  const server = await serveIn(netns, 80, body);
  return { netns, address, body, server };
}

/** Remove a test host; ignores what is already gone. */
export async function stopTestHost(netns: string, hostLink: string, server?: ChildProcess): Promise<void> {
  server?.kill('SIGKILL');
  await sh('ip', ['link', 'del', hostLink]);
  await sh('ip', ['netns', 'del', netns]);
}

/** `curl` from inside a netns (≤ 2 s); returns the body, or null when nothing answered. */
export async function fetchFrom(netns: string, url: string): Promise<string | null> {
  const result = await sh('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '2', url], 5_000);
  return result.code === 0 ? result.stdout : null;
}

const RESOLVE = `
const { Resolver } = require('node:dns').promises;
const resolver = new Resolver({ timeout: 1500, tries: 1 });
resolver.setServers([process.argv[1]]);
resolver.resolve4(process.argv[2]).then((a) => console.log('OK ' + a.join(',')), (e) => console.log('ERR ' + e.code));
`;

/** Resolve `name` with `server` from inside a netns: `OK a,b` or `ERR ECODE`. */
export async function resolveFrom(netns: string, server: string, name: string): Promise<string> {
  const result = await sh(
    'ip',
    ['netns', 'exec', netns, process.execPath, '-e', RESOLVE, server, name],
    5_000,
  );
  return result.stdout.trim() || `ERR exit ${result.code}`;
}

/** True when a TCP connection from the host to `host:port` opens within 2 s. */
export function hostCanConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The fake resolver's answer to `query`: A records from `records`, NXDOMAIN otherwise. */
function fakeAnswer(query: Buffer, records: Record<string, string>): Buffer {
  let offset = 12;
  const labels: string[] = [];
  while (offset < query.length && query[offset] !== 0) {
    const length = query[offset]!;
    labels.push(query.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  const questionEnd = offset + 5;
  const type = query.readUInt16BE(offset + 1);
  const address = records[labels.join('.').toLowerCase()];
  const header = Buffer.from(query.subarray(0, questionEnd));
  header.writeUInt16BE(0x8180 | (address ? 0 : 3), 2);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const answers: Buffer[] = [];
  if (address && type === 1) {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // pointer to the question name
    record.writeUInt16BE(1, 2);
    record.writeUInt16BE(1, 4);
    record.writeUInt32BE(5, 6); // TTL 5 s
    record.writeUInt16BE(4, 10);
    for (const [i, octet] of address.split('.').entries()) record.writeUInt8(Number(octet), 12 + i);
    answers.push(record);
  }
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, ...answers]);
}

/** A fake upstream resolver on loopback (UDP and TCP on one port). */
export async function startTestDns(
  records: Record<string, string>,
): Promise<{ port: number; socket: Socket; tcp: TcpServer }> {
  const tcp = createTcpServer((conn) => {
    let buffered = Buffer.alloc(0);
    conn.on('error', () => {});
    conn.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const reply = fakeAnswer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), records);
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
        const length = Buffer.alloc(2);
        length.writeUInt16BE(reply.length);
        conn.write(Buffer.concat([length, reply]));
      }
    });
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const port = (tcp.address() as { port: number }).port;
  const socket = createSocket('udp4');
  socket.on('message', (query, rinfo) => socket.send(fakeAnswer(query, records), rinfo.port, rinfo.address));
  await new Promise<void>((resolve) => socket.bind(port, '127.0.0.1', resolve));
  return { port, socket, tcp };
}

const TCP_QUERY = `
const net = require('node:net');
const [server, name] = [process.argv[1], process.argv[2]];
const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
const query = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
const socket = net.connect({ host: server, port: 53 }, () => socket.write(Buffer.concat([Buffer.from([0, query.length]), query])));
let data = Buffer.alloc(0);
socket.setTimeout(1500, () => { console.log('ERR timeout'); process.exit(0); });
socket.on('error', (e) => { console.log('ERR ' + e.code); process.exit(0); });
socket.on('data', (d) => {
  data = Buffer.concat([data, d]);
  if (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) {
    console.log('rcode=' + (data.readUInt16BE(4) & 15) + ' answers=' + data.readUInt16BE(8));
    process.exit(0);
  }
});
`;

/** One A query over TCP from inside a netns: `rcode=N answers=M` or `ERR …`. */
export async function tcpQueryFrom(netns: string, server: string, name: string): Promise<string> {
  const result = await sh(
    'ip',
    ['netns', 'exec', netns, process.execPath, '-e', TCP_QUERY, server, name],
    5_000,
  );
  return result.stdout.trim() || `ERR exit ${result.code}`;
}

/** Machine-wide lock file for the test hosts' addresses (their host routes cannot exist twice). */
const TEST_HOSTS_LOCK = '/run/lock/corral-test-hosts.lock';

/**
 * Wait for the machine-wide test-hosts lock (another suite, or another person's run, may be using
 * 203.0.113.10 and friends) and resolve with its release. The lock is held by a `flock … cat`
 * child: it ends, and frees the lock, when the release closes its stdin or this process dies.
 */
export function lockTestHosts(timeoutMs = 600_000): Promise<() => void> {
  const child = spawn(
    'flock',
    ['-w', String(Math.ceil(timeoutMs / 1000)), TEST_HOSTS_LOCK, 'sh', '-c', 'echo locked; exec cat'],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(() => child.stdin?.end()));
    child.once('exit', (code) => reject(new Error(`test-hosts lock not taken (flock exited ${code})`)));
    child.once('error', reject);
  });
}
