import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import { EnvName } from '../sandboxes/spec.js';
import { MAX_TERMINAL_SIZE, MIN_TERMINAL_SIZE } from '../terminals/protocol.js';
import { DEFAULT_CLIENT_WINDOW_BYTES, MAX_WINDOW_BYTES } from './frames.js';

/*
 * The JSON payload of an OPEN frame: what the channel runs (exec, pty) or reaches (tcp), and
 * the window the client grants for the server's output.
 */

const Window = Type.Optional(
  Type.Integer({ minimum: 1, maximum: MAX_WINDOW_BYTES, description: 'Initial credit for server output' }),
);
const Env = Type.Record(EnvName, Type.String({ maxLength: 32_768 }), {
  maxProperties: 200,
  additionalProperties: false,
});
const Process = {
  args: Type.Optional(Type.Array(Type.String({ maxLength: 131_072 }), { maxItems: 4096 })),
  env: Type.Optional(Env),
  cwd: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  user: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('root')])),
  timeout_seconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400 })),
  window: Window,
};
const Size = Type.Optional(Type.Integer({ minimum: MIN_TERMINAL_SIZE, maximum: MAX_TERMINAL_SIZE }));

const ExecOpen = Type.Object(
  { type: Type.Literal('exec'), command: Type.String({ minLength: 1, maxLength: 4096 }), ...Process },
  { additionalProperties: false },
);
const PtyOpen = Type.Object(
  {
    type: Type.Literal('pty'),
    command: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    cols: Size,
    rows: Size,
    ...Process,
  },
  { additionalProperties: false },
);
const TcpOpen = Type.Object(
  { type: Type.Literal('tcp'), port: Type.Integer({ minimum: 1, maximum: 65_535 }), window: Window },
  { additionalProperties: false },
);

export type ExecOpen = Static<typeof ExecOpen>;
export type PtyOpen = Static<typeof PtyOpen>;
export type TcpOpen = Static<typeof TcpOpen>;
/** A valid OPEN request. */
export type OpenRequest = ExecOpen | PtyOpen | TcpOpen;

const SCHEMAS = { exec: ExecOpen, pty: PtyOpen, tcp: TcpOpen } as const;

/** Parses an OPEN payload; a string saying what is wrong when it is invalid. */
export function parseOpen(payload: Buffer): OpenRequest | string {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'the OPEN payload is not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the OPEN payload is not an object';
  const type = (body as { type?: unknown }).type;
  if (type !== 'exec' && type !== 'pty' && type !== 'tcp') return 'type must be exec, pty or tcp';
  const schema = SCHEMAS[type];
  if (Value.Check(schema, body)) return body as OpenRequest;
  const first = [...Value.Errors(schema, body)][0];
  const where = first?.instancePath || '/';
  return `${where}: ${first?.message ?? 'invalid'}`;
}

/** The client's initial window of an OPEN request. */
export function clientWindowOf(open: OpenRequest): number {
  return open.window ?? DEFAULT_CLIENT_WINDOW_BYTES;
}
