import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';

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

/** A fake upstream resolver on loopback: A records from `records`, NXDOMAIN otherwise. */
export async function startTestDns(
  records: Record<string, string>,
): Promise<{ port: number; socket: Socket }> {
  const socket = createSocket('udp4');
  socket.on('message', (query, rinfo) => {
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
      address.split('.').forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
      answers.push(record);
    }
    header.writeUInt16BE(answers.length, 6);
    socket.send(Buffer.concat([header, ...answers]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, socket };
}
