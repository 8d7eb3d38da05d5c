import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { actorOf, requireAuth } from '../../services/access.js';
import { addSshKey, deleteSshKey, listSshKeys, parsePublicKey } from '../../services/ssh/keys.js';
import { SECURITY } from '../auth/schemas.js';

const SshKeySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  algorithm: Type.String({ description: '`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256` …' }),
  fingerprint: Type.String({ description: '`SHA256:…` as `ssh-keygen -lf` prints it.' }),
  public_key: Type.String({ description: '`{algorithm} {base64}` (the comment is not kept).' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    public_key: Type.String({
      minLength: 1,
      maxLength: 16 * 1024,
      description: 'One OpenSSH line (the .pub file).',
    }),
  },
  { additionalProperties: false },
);

/**
 * Registering or removing a key changes who can open a shell in every workspace where the user
 * is developer or more — beyond one API key's workspace and scopes — so it needs the full `*`
 * scope (a dashboard session, or a key with `*`). Listing needs only to be the user.
 */
const WRITE_SCOPE = '*';

/**
 * `GET/POST /v1/account/ssh-keys`, `DELETE /v1/account/ssh-keys/{id}`: the caller's SSH public
 * keys, for logging in to the SSH gateway as `<sandbox id>@host`.
 */
export async function registerSshKeyRoutes(app: App): Promise<void> {
  app.get(
    '/v1/account/ssh-keys',
    {
      schema: {
        tags: ['ssh-keys'],
        summary: 'List your SSH public keys',
        security: SECURITY,
        response: { 200: Type.Object({ data: Type.Array(SshKeySchema) }) },
      },
    },
    async (request) => ({ data: await listSshKeys(app.store.db, requireAuth(request).userId) }),
  );

  app.post(
    '/v1/account/ssh-keys',
    {
      schema: {
        tags: ['ssh-keys'],
        summary: 'Register an SSH public key',
        security: SECURITY,
        body: CreateBody,
        response: { 201: SshKeySchema },
      },
      config: { scope: WRITE_SCOPE },
    },
    async (request, reply) => {
      const auth = requireAuth(request);
      const key = parsePublicKey(request.body.public_key);
      const created = await addSshKey(app.store.db, auth.userId, request.body.name, key);
      const actor = actorOf(request);
      await app.audit.record({
        actorType: actor.actorType,
        actorId: actor.actorId,
        action: 'ssh_key.create',
        targetType: 'ssh_key',
        targetId: created.id,
        ip: actor.ip,
        details: { ...actor.details, user_id: auth.userId, fingerprint: created.fingerprint },
      });
      reply.code(201);
      return created;
    },
  );

  app.delete(
    '/v1/account/ssh-keys/:id',
    {
      schema: {
        tags: ['ssh-keys'],
        summary: 'Remove an SSH public key',
        security: SECURITY,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 204: Type.Null() },
      },
      config: { scope: WRITE_SCOPE },
    },
    async (request, reply) => {
      const auth = requireAuth(request);
      if (!(await deleteSshKey(app.store.db, auth.userId, request.params.id)))
        throw apiError('NOT_FOUND', { id: request.params.id }, 'SSH key not found');
      // SSH connections logged in with it end now (on other servers: at their next check).
      const closed = app.tokenConnections.keyDeleted(request.params.id);
      const actor = actorOf(request);
      await app.audit.record({
        actorType: actor.actorType,
        actorId: actor.actorId,
        action: 'ssh_key.delete',
        targetType: 'ssh_key',
        targetId: request.params.id,
        ip: actor.ip,
        details: { ...actor.details, user_id: auth.userId, closed_connections: closed },
      });
      return reply.code(204).send(null);
    },
  );
}
