import type { IncomingMessage } from 'node:http';
import { TOKEN_HEADER } from './access.js';
import { withoutPreviewCookie } from './cookie.js';
import { type ForwardHeaders, forwardableHeaders } from './proxy.js';

/** Request headers never forwarded: Corral's token, the X-Forwarded-* set here, the cookie (forwarded without the preview cookie). */
const DROP: ReadonlySet<string> = new Set([
  TOKEN_HEADER,
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'cookie',
]);
/** DROP, and `authorization` when it was Corral's credential (or a protected port's Basic password). */
const DROP_WITH_AUTHORIZATION: ReadonlySet<string> = new Set([...DROP, 'authorization']);

/**
 * The headers to forward into the sandbox: hop-by-hop ones and Corral's credentials removed
 * (`stripAuthorization` when the Authorization header was Corral's), the preview cookie taken
 * out of `Cookie`, and X-Forwarded-For/-Proto/-Host set (appended to the client's when
 * `trustProxy`).
 */
export function previewForwardHeaders(
  req: IncomingMessage,
  stripAuthorization: boolean,
  trustProxy: boolean,
): ForwardHeaders {
  const headers = forwardableHeaders(req, stripAuthorization ? DROP_WITH_AUTHORIZATION : DROP);
  const cookie = withoutPreviewCookie(req.headers.cookie);
  if (cookie !== undefined) headers.cookie = cookie;
  const remote = req.socket.remoteAddress ?? '';
  const priorFor = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = trustProxy && typeof priorFor === 'string' ? `${priorFor}, ${remote}` : remote;
  const priorProto = req.headers['x-forwarded-proto'];
  headers['x-forwarded-proto'] =
    trustProxy && typeof priorProto === 'string' ? priorProto : 'encrypted' in req.socket ? 'https' : 'http';
  headers['x-forwarded-host'] = req.headers.host ?? '';
  return headers;
}
