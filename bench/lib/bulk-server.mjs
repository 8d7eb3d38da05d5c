// The ceiling for bulk transfers over loopback HTTP: a bare node:http server that counts the
// bytes of any PUT body (answering `{"size": n}`) and answers GET /bytes?n=N with N bytes.
// Run as its own process: `node bench/lib/bulk-server.mjs PORT`.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
// One random MiB, repeated: the server's own cost per byte stays a memory read.
const block = randomBytes(1 << 20);

createServer((request, response) => {
  if (request.method === 'PUT') {
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
    });
    request.on('end', () => {
      response.writeHead(201, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ size }));
    });
    return;
  }
  const total = Number(new URL(request.url, 'http://x').searchParams.get('n') ?? 0);
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const slice = block.subarray(0, Math.min(block.length, total - sent));
      sent += slice.length;
      if (!response.write(slice)) {
        response.once('drain', pump);
        return;
      }
    }
    response.end();
  };
  pump();
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
