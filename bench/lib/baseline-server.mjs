// The ceiling for the api scenario: a server answering a fixed JSON body, either bare node:http
// or bare Fastify. Run as its own process: `node bench/lib/baseline-server.mjs http|fastify PORT`.
import { createServer } from 'node:http';

const [kind, portText] = process.argv.slice(2);
const port = Number(portText);
const body = JSON.stringify({ id: 'usr_baseline', email: 'baseline@example.test', workspaces: [] });

if (kind === 'http') {
  createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    response.end(body);
  }).listen(port, '127.0.0.1');
} else if (kind === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.get('/*', async (_request, reply) => reply.type('application/json; charset=utf-8').send(body));
  await app.listen({ port, host: '127.0.0.1' });
} else {
  console.error('usage: baseline-server.mjs http|fastify PORT');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
