import type { ExecProcess } from '@corral/runtime';
import type { StoreContext } from '../support/app.js';

/**
 * A small HTTP + WebSocket server in Perl (the base template has perl with IO::Socket,
 * Digest::SHA and MIME::Base64), one forked child per connection:
 * - `GET /headers` answers the request head it received (to see what the proxy forwarded);
 * - `POST /sha256` streams the body through SHA-256 and answers `{hex} {length}`;
 * - `GET /big?n=N` streams N bytes of the pattern `i % 251` (then closes), its pid in `X-Pid`;
 * - `GET /pid` answers the pid of the child serving this connection (same pid = same connection);
 * - `GET /bye` answers with `Connection: keep-alive` and closes anyway (a server's idle timeout);
 * - `GET /hang` (a WebSocket upgrade too) reads the request and never answers (30 s);
 * - `GET /drip?n=N&ms=M` answers its head at once, then N chunks `chunk i\n` M ms apart (then closes);
 * - connections are kept alive unless the request says `Connection: close`;
 * - a WebSocket upgrade on any path echoes every text/binary message (ping → pong, close → close);
 * - anything else answers `hello from {port} {method} {path}`.
 */
const SERVER = String.raw`
use strict; use warnings; use IO::Socket::INET; use Digest::SHA qw(sha1); use MIME::Base64;
$SIG{CHLD} = 'IGNORE'; $| = 1;
my $port = shift;
my $srv = IO::Socket::INET->new(LocalAddr => '0.0.0.0', LocalPort => $port, Listen => 128, ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
print "listening\n";
my $block = join('', map { chr($_ % 251) } 0 .. 65535);
while (1) {
  my $c = $srv->accept or next;
  my $pid = fork();
  if (!defined $pid) { close $c; next; }
  if ($pid) { close $c; next; }
  close $srv; binmode $c; while (handle($c)) {} close $c; exit 0;
}
sub readn { my ($c, $n) = @_; my $buf = ''; while (length($buf) < $n) { my $r = read($c, my $chunk, $n - length($buf)); return undef unless $r; $buf .= $chunk; } return $buf; }
sub reply { my ($c, $status, $body, $keep) = @_; my $conn = $keep ? 'keep-alive' : 'close';
  print $c "HTTP/1.1 $status\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) . "\r\nConnection: $conn\r\nX-Served-By: perl\r\n\r\n$body"; return $keep; }
sub handle {
  my $c = shift;
  my $line = <$c>; return unless defined $line; $line =~ s/\r?\n$//;
  my ($method, $path) = split / /, $line;
  my %h; my $head = "$line\n";
  while (my $l = <$c>) { $l =~ s/\r?\n$//; last if $l eq ''; $head .= "$l\n"; my ($k, $v) = split /:\s*/, $l, 2; $h{lc $k} = $v; }
  if ($path eq '/hang') { sleep 30; return 0; }
  if (lc($h{upgrade} // '') eq 'websocket') { ws($c, \%h); return 0; }
  my $keep = lc($h{connection} // '') ne 'close';
  if ($path eq '/headers') { return reply($c, '200 OK', $head, $keep); }
  if ($path eq '/pid') { return reply($c, '200 OK', "$$", $keep); }
  if ($path eq '/bye') { reply($c, '200 OK', 'bye', 1); return 0; }
  if ($method eq 'POST' && $path eq '/sha256') {
    my $left = $h{'content-length'} // 0; my $sha = Digest::SHA->new(256); my $n = 0;
    while ($left > 0) { my $r = read($c, my $chunk, $left > 65536 ? 65536 : $left); last unless $r; $sha->add($chunk); $left -= $r; $n += $r; }
    return reply($c, '200 OK', $sha->hexdigest . " $n", $keep);
  }
  if ($path =~ m{^/drip\?n=(\d+)&ms=(\d+)$}) {
    my ($n, $ms) = ($1, $2);
    print $c "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
    for my $i (1 .. $n) { select(undef, undef, undef, $ms / 1000); print $c "chunk $i\n"; }
    return 0;
  }
  if ($path =~ m{^/big\?n=(\d+)$}) {
    my $n = $1;
    print $c "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: $n\r\nConnection: close\r\nX-Pid: $$\r\n\r\n";
    while ($n > 0) { my $k = $n > 65536 ? 65536 : $n; print $c substr($block, 0, $k); $n -= $k; }
    return 0;
  }
  return reply($c, '200 OK', "hello from $port $method $path", $keep);
}
sub frame { my ($op, $data) = @_; my $len = length($data); my $hdr = chr(0x80 | $op);
  if ($len < 126) { $hdr .= chr($len); } elsif ($len < 65536) { $hdr .= chr(126) . pack('n', $len); } else { $hdr .= chr(127) . pack('Q>', $len); }
  return $hdr . $data; }
sub ws {
  my ($c, $h) = @_;
  my $accept = encode_base64(sha1($h->{'sec-websocket-key'} . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
  print $c "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: $accept\r\n\r\n";
  while (1) {
    my $b = readn($c, 2); return unless defined $b;
    my ($b0, $b1) = unpack('CC', $b); my $op = $b0 & 0x0f; my $len = $b1 & 0x7f;
    if ($len == 126) { $len = unpack('n', readn($c, 2)); } elsif ($len == 127) { $len = unpack('Q>', readn($c, 8)); }
    my $mask = ($b1 & 0x80) ? readn($c, 4) : ''; my $data = $len ? readn($c, $len) : '';
    return unless defined $data;
    if ($mask ne '') { $data = $data ^ substr($mask x (int($len / 4) + 1), 0, $len); }
    if ($op == 8) { print $c frame(8, $data); return; }
    if ($op == 9) { print $c frame(10, $data); next; }
    print $c frame($op, $data);
  }
}
`;

/**
 * Starts the Perl server on `port` in the background of sandbox `id` (`setsid`, output to
 * /dev/null): not a command the runtime tracks, so the sandbox can go idle while it runs.
 * Waits until it listens.
 */
export async function startDetachedSandboxServer(ctx: StoreContext, id: string, port: number): Promise<void> {
  const script = 'setsid perl -e "$0" "$1" </dev/null >/dev/null 2>&1 &';
  const launcher = await ctx.engine.runtime.exec(id, {
    command: 'sh',
    args: ['-c', script, SERVER, String(port)],
  });
  launcher.stdin.end();
  const { exitCode } = await launcher.wait();
  if (exitCode !== 0) throw new Error(`could not start the sandbox server (exit ${exitCode})`);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ports = await ctx.engine.runtime.ports(id);
    if (ports.some((p) => p.port === port)) return;
    if (Date.now() > deadline) throw new Error('the detached sandbox server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A server running in a sandbox; `stop()` kills it. */
export interface SandboxServer {
  process: ExecProcess;
  stop(): void;
}

/** Starts the Perl server on `port` inside sandbox `id` and waits until it listens. */
export async function startSandboxServer(
  ctx: StoreContext,
  id: string,
  port: number,
): Promise<SandboxServer> {
  const process = await ctx.engine.runtime.exec(id, { command: 'perl', args: ['-e', SERVER, String(port)] });
  let out = '';
  let err = '';
  process.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
  });
  process.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  const deadline = Date.now() + 20_000;
  while (!out.includes('listening')) {
    if (Date.now() > deadline) throw new Error(`the sandbox server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { process, stop: () => process.kill('SIGKILL') };
}
