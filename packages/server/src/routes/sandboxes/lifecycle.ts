import { Type } from 'typebox';
import type { App } from '../../app.js';
import {
  keepalive,
  LIFECYCLE_ACTIONS,
  runLifecycleAction,
  UpdateSandboxBody,
  updateSandbox,
} from '../../services/sandboxes/lifecycle.js';
import { MAX_TIMEOUT_SECONDS } from '../../services/sandboxes/spec.js';
import { SandboxParams, SandboxSchema, SECURITY } from './schemas.js';

/** `POST /v1/sandboxes/{id}/keepalive` body (optional). */
const KeepaliveBody = Type.Union([
  Type.Object(
    { seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS })) },
    { additionalProperties: false },
  ),
  Type.Null(),
]);

const SUMMARIES = {
  start: 'Start a stopped, hibernated or failed sandbox',
  stop: 'Stop a sandbox: kill every process, keep the filesystem',
  pause: 'Freeze every process of a running sandbox',
  resume: 'Thaw a paused sandbox, or boot a hibernated one',
  hibernate: 'Persist a sandbox (memory too where the isolation can) and free its processes',
} as const;

/**
 * `POST /v1/sandboxes/{id}/start|stop|pause|resume|hibernate`, `POST …/keepalive` and
 * `PATCH /v1/sandboxes/{id}`: developers act, viewers are 403, a wrong status is 409
 * INVALID_STATE naming the current one.
 */
export function registerSandboxLifecycleRoutes(app: App): void {
  const sandboxes = app.sandboxes;

  for (const action of LIFECYCLE_ACTIONS) {
    app.post(
      `/v1/sandboxes/:id/${action}`,
      {
        config: { scope: 'sandbox:write' },
        schema: {
          tags: ['sandboxes'],
          summary: SUMMARIES[action],
          security: SECURITY,
          params: SandboxParams,
          response: { 200: SandboxSchema },
        },
      },
      async (request) =>
        sandboxes.view(await runLifecycleAction(sandboxes, request, request.params.id, action)),
    );
  }

  app.post(
    '/v1/sandboxes/:id/keepalive',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: "Extend a sandbox's expiry: now + `seconds` (default its timeout_seconds)",
        security: SECURITY,
        params: SandboxParams,
        body: Type.Optional(KeepaliveBody),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await keepalive(sandboxes, request, request.params.id, request.body?.seconds);
      return reply.code(204).send(null);
    },
  );

  app.patch(
    '/v1/sandboxes/:id',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Update name, timeouts, resources, metadata, budget or network policy',
        security: SECURITY,
        params: SandboxParams,
        body: UpdateSandboxBody,
        response: { 200: SandboxSchema },
      },
    },
    async (request) =>
      sandboxes.view(await updateSandbox(sandboxes, request, request.params.id, request.body)),
  );
}
