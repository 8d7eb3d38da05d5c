import { Type } from 'typebox';
import type { App } from '../../app.js';
import { hashPassword } from '../../services/passwords.js';
import { type PortView, portsView } from '../../services/preview/ports-list.js';
import { allPortSettings, updatePortSettings } from '../../services/preview/settings.js';
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

  const settingsView = (id: string, port: number, s: { public: boolean; passwordHash: string | null }) => ({
    port,
    preview_url: previewUrl(app.config, id, port),
    public: s.public,
    protected: s.passwordHash !== null,
  });

  app.post(
    '/v1/sandboxes/:id/ports/:port/protect',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Password-protect a preview port',
        description:
          'Visitors without other access get a password page (or use `Authorization: Basic` with any user ' +
          'name); wrong passwords are throttled (5 per minute per client IP, then 429). Setting it again ' +
          'replaces the password and signs out everyone who entered the old one.',
        security: SECURITY,
        params: PortParams,
        body: ProtectBody,
        response: { 200: PortSettingsSchema },
      },
    },
    async (request) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      const passwordHash = await hashPassword(request.body.password);
      const port = request.params.port;
      const s = await updatePortSettings(app.store.db, row.id, port, { passwordHash });
      await app.sandboxes.record(request, row, 'sandbox.port.protect', { port });
      return settingsView(row.id, port, s);
    },
  );

  app.delete(
    '/v1/sandboxes/:id/ports/:port/protect',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: "Remove a preview port's password (idempotent)",
        security: SECURITY,
        params: PortParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      const port = request.params.port;
      await updatePortSettings(app.store.db, row.id, port, { passwordHash: null });
      await app.sandboxes.record(request, row, 'sandbox.port.unprotect', { port });
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/v1/sandboxes/:id/ports/:port/public',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Make a preview port public (anyone with the URL, no credentials)',
        description: 'Previews are private by default; `DELETE` makes the port private again.',
        security: SECURITY,
        params: PortParams,
        response: { 200: PortSettingsSchema },
      },
    },
    async (request) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      const port = request.params.port;
      const s = await updatePortSettings(app.store.db, row.id, port, { public: true });
      await app.sandboxes.record(request, row, 'sandbox.port.public', { port });
      return settingsView(row.id, port, s);
    },
  );

  app.delete(
    '/v1/sandboxes/:id/ports/:port/public',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Make a preview port private again (idempotent)',
        security: SECURITY,
        params: PortParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await app.sandboxes.load(request, request.params.id, 'developer');
      const port = request.params.port;
      await updatePortSettings(app.store.db, row.id, port, { public: false });
      await app.sandboxes.record(request, row, 'sandbox.port.private', { port });
      return reply.code(204).send(null);
    },
  );
}
