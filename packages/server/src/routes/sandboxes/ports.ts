import { type Static, Type } from 'typebox';
import type { App } from '../../app.js';
import { hashPassword } from '../../services/passwords.js';
import { type PortView, portsView } from '../../services/preview/ports-list.js';
import { allPortSettings, type PortSettings, updatePortSettings } from '../../services/preview/settings.js';
import { previewUrl } from '../../services/sandboxes/view.js';
import { SandboxParams, SECURITY } from './schemas.js';

const PortSchema = Type.Object({
  port: Type.Integer(),
  protocol: Type.Literal('tcp'),
  address: Type.Union([Type.String(), Type.Null()], {
    description: 'Bound address inside; null when not listening',
  }),
  process: Type.Union([Type.String(), Type.Null()], { description: 'Command name of the listening process' }),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  listening: Type.Boolean({
    description: 'False for a declared port (or one with preview settings) nothing listens on yet',
  }),
  preview_url: Type.String(),
  public: Type.Boolean({ description: 'Open to anyone without credentials' }),
  protected: Type.Boolean({ description: 'Visitors may enter with the password' }),
});

const PortSettingsSchema = Type.Object({
  port: Type.Integer(),
  preview_url: Type.String(),
  public: Type.Boolean(),
  protected: Type.Boolean(),
});

const PortParams = Type.Object({
  id: SandboxParams.properties.id,
  port: Type.Integer({ minimum: 1, maximum: 65_535 }),
});

const ProtectBody = Type.Object(
  { password: Type.String({ minLength: 8, maxLength: 256, description: 'Stored as an argon2id hash' }) },
  { additionalProperties: false },
);

const ListResponse = Type.Object({ data: Type.Array(PortSchema), next_cursor: Type.Null() });

/**
 * `GET /v1/sandboxes/{id}/ports` (alias `/services`), `POST/DELETE …/ports/{port}/protect`,
 * `PUT/DELETE …/ports/{port}/public`. (`POST …/port-forward` lives with the tokens.)
 */
export function registerSandboxPortRoutes(app: App): void {
  for (const path of ['/v1/sandboxes/:id/ports', '/v1/sandboxes/:id/services']) {
    app.get(
      path,
      {
        config: { scope: 'sandbox:read' },
        schema: {
          tags: ['sandboxes'],
          summary: path.endsWith('services')
            ? 'Alias of GET …/ports'
            : 'Listening ports, with process and preview URL',
          description:
            'Ports listening inside the sandbox now (detected live), then declared ports and ports with preview ' +
            'settings that nothing listens on (`listening: false`). A sandbox that is not running lists only the latter.',
          security: SECURITY,
          params: SandboxParams,
          response: { 200: ListResponse },
        },
      },
      async (request) => {
        const row = await app.sandboxes.load(request, request.params.id, 'viewer');
        const listening = row.status === 'running' ? await app.sandboxes.runtime.ports(row.id) : [];
        const settings = await allPortSettings(app.store.db, row.id);
        const data: PortView[] = portsView(app.config, row, listening, settings);
        return { data, next_cursor: null };
      },
    );
  }

  for (const route of SETTING_ROUTES) registerPortSettingRoute(app, route);
}

type ProtectBodyValue = Static<typeof ProtectBody>;

/** One `…/ports/{port}/{protect|public}` route: the parts that differ between the four. */
interface PortSettingRoute {
  method: 'POST' | 'PUT' | 'DELETE';
  setting: 'protect' | 'public';
  summary: string;
  description?: string;
  /** The request body schema (only setting a password has one). */
  body?: typeof ProtectBody;
  /** The audit event's action. */
  action: string;
  /** The change to write, from the validated body. */
  patch: (body: ProtectBodyValue | undefined) => Promise<Partial<PortSettings>> | Partial<PortSettings>;
  /** 200 with the port's settings, or 204 for the (idempotent) removals. */
  answer: 200 | 204;
}

const SETTING_ROUTES: PortSettingRoute[] = [
  {
    method: 'POST',
    setting: 'protect',
    summary: 'Password-protect a preview port',
    description:
      'Visitors without other access get a password page (or use `Authorization: Basic` with any user ' +
      'name); wrong passwords are throttled (5 per minute per client IP, then 429). Setting it again ' +
      'replaces the password and signs out everyone who entered the old one.',
    body: ProtectBody,
    action: 'sandbox.port.protect',
    patch: async (body) => ({ passwordHash: await hashPassword(body!.password) }),
    answer: 200,
  },
  {
    method: 'DELETE',
    setting: 'protect',
    summary: "Remove a preview port's password (idempotent)",
    action: 'sandbox.port.unprotect',
    patch: () => ({ passwordHash: null }),
    answer: 204,
  },
  {
    method: 'PUT',
    setting: 'public',
    summary: 'Make a preview port public (anyone with the URL, no credentials)',
    description: 'Previews are private by default; `DELETE` makes the port private again.',
    action: 'sandbox.port.public',
    patch: () => ({ public: true }),
    answer: 200,
  },
  {
    method: 'DELETE',
    setting: 'public',
    summary: 'Make a preview port private again (idempotent)',
    action: 'sandbox.port.private',
    patch: () => ({ public: false }),
    answer: 204,
  },
];

/** Registers one port-settings route: developer role, scope sandbox:write, audited. */
function registerPortSettingRoute(app: App, route: PortSettingRoute): void {
  app.route({
    method: route.method,
    url: `/v1/sandboxes/:id/ports/:port/${route.setting}`,
    config: { scope: 'sandbox:write' },
    schema: {
      tags: ['sandboxes'],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      security: SECURITY,
      params: PortParams,
      ...(route.body ? { body: route.body } : {}),
      response: route.answer === 200 ? { 200: PortSettingsSchema } : { 204: Type.Null() },
    },
    handler: async (request, reply) => {
      const { id, port } = request.params as Static<typeof PortParams>;
      const row = await app.sandboxes.load(request, id, 'developer');
      const patch = await route.patch(request.body as ProtectBodyValue | undefined);
      const settings = await updatePortSettings(app.store.db, row.id, port, patch);
      await app.sandboxes.record(request, row, route.action, { port });
      if (route.answer === 204) return reply.code(204).send(null);
      return {
        port,
        preview_url: previewUrl(app.config, row.id, port),
        public: settings.public,
        protected: settings.passwordHash !== null,
      };
    },
  });
}
