import {
  ConflictError,
  ConnectionError,
  type CorralError,
  ForbiddenError,
  InvalidStateError,
  UnauthorizedError,
} from '../errors.js';
import type { Transport } from '../http.js';
import type { SandboxInfo } from '../types.js';

/**
 * A refused upgrade as a typed error. `ws` reports the HTTP status ("Unexpected server
 * response: 404"); browsers report nothing, so the sandbox is looked up to say why.
 */
export async function explainRefusal(
  transport: Transport,
  path: string,
  refusal: string,
): Promise<CorralError> {
  const status = Number(/response: (\d{3})/.exec(refusal)?.[1] ?? 0);
  const init = { status, details: { reason: refusal } };
  if (status === 401)
    return new UnauthorizedError(`The connection was refused: ${refusal}`, { ...init, code: 'UNAUTHORIZED' });
  if (status === 403) {
    return new ForbiddenError(
      `The connection was refused (needs role developer and scope sandbox:exec): ${refusal}`,
      {
        ...init,
        code: 'FORBIDDEN',
      },
    );
  }
  let info: SandboxInfo;
  try {
    info = await transport.json<SandboxInfo>({ method: 'GET', path });
  } catch (err) {
    return err as CorralError;
  }
  if (info.status !== 'running') {
    return new InvalidStateError(`The sandbox is ${info.status}, not running`, {
      ...init,
      code: 'INVALID_STATE',
    });
  }
  if (status === 409) {
    return new ConflictError(`The sandbox has too many connections open: ${refusal}`, {
      ...init,
      code: 'CONFLICT',
    });
  }
  return new ConnectionError(`The sandbox connection could not be opened: ${refusal}`, {
    ...init,
    code: 'CONNECTION_ERROR',
  });
}
