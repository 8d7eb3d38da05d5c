import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Something that answers some requests before Fastify's router sees them — the preview proxy
 * (`{port}-{sandbox}.{preview domain}` hosts) is one. Both methods must decide synchronously
 * (from the request line and headers) and then own the request or socket completely.
 */
export interface FrontDoorHandler {
  /** True when this handler takes the request (it then answers it). */
  request(req: IncomingMessage, res: ServerResponse): boolean;
  /** True when this handler takes the upgrade (it then owns the socket). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The server's front door: the HTTP server Fastify listens on (its `serverFactory`), letting
 * registered handlers claim requests and WebSocket upgrades by Host before the API's routing,
 * authentication and body parsing run. Requests nobody claims go to Fastify unchanged.
 */
export class FrontDoor {
  readonly #handlers: FrontDoorHandler[] = [];

  /** Adds a handler; handlers are asked in the order they were added. */
  use(handler: FrontDoorHandler): void {
    this.#handlers.push(handler);
  }

  /** Fastify's `serverFactory`: a plain node:http server that asks the handlers first. */
  readonly serverFactory = (fastifyHandler: RequestHandler): Server => {
    const handlers = this.#handlers;
    const server = createServer((req, res) => {
      for (const handler of handlers) if (handler.request(req, res)) return;
      fastifyHandler(req, res);
    });
    // Fastify's WebSocket plugin listens for 'upgrade' on this server itself; an upgrade a
    // handler claims must never reach it, so the claim happens before the event is emitted.
    const emit = server.emit.bind(server) as (event: string | symbol, ...args: unknown[]) => boolean;
    server.emit = ((event: string | symbol, ...args: unknown[]) => {
      if (event === 'upgrade') {
        const [req, socket, head] = args as [IncomingMessage, Duplex, Buffer];
        for (const handler of handlers) if (handler.upgrade(req, socket, head)) return true;
      }
      return emit(event, ...args);
    }) as Server['emit'];
    return server;
  };
}
