import { Type } from 'typebox';
import type { App } from '../../app.js';
import { apiError } from '../../errors.js';
import { EnvName, EnvVars } from '../../services/sandboxes/spec.js';
import { SandboxParams, SECURITY } from './schemas.js';

/** The most secret env vars one sandbox holds (the same cap as a create body's `env`). */
export const MAX_ENV_VARS = 200;

/** What every env route answers: the names only, sorted; values are write-only. */
const EnvNames = Type.Object({
  names: Type.Array(Type.String(), {
    description: 'The names of the secret env vars of the sandbox, sorted. Values are never returned.',
  }),
});

const PutEnvBody = Type.Object(
  { vars: EnvVars },
  {
    additionalProperties: false,
    description:
      "`vars` is merged into the sandbox's secret env: new names are added, existing ones replaced. " +
      "Any name matching `^[A-Za-z_][A-Za-z0-9_]*$` is allowed, PATH and HOME included (an exec's own `env` still wins). " +
      'Values are up to 32 KiB; a sandbox holds at most 200.',
  },
);

const EnvVarParams = Type.Object({ id: SandboxParams.properties.id, name: EnvName });

/**
 * `GET, PUT /v1/sandboxes/{id}/env` and `DELETE /v1/sandboxes/{id}/env/{name}`: a sandbox's
 * secret env, encrypted at rest (AES-256-GCM, bound to the sandbox and the name), present in
 * every exec and terminal of the sandbox, never returned and never logged. Any member reads the
 * names; developers and up change them.
 */
export function registerSandboxEnvRoutes(app: App): void {
  const sandboxes = app.sandboxes;

  /** The sorted names of a sandbox's env. */
  const namesOf = async (id: string): Promise<string[]> => {
    const rows = await sandboxes.db
      .selectFrom('sandbox_env')
      .select('name')
      .where('sandbox_id', '=', id)
      .execute();
    return rows.map((row) => row.name).sort();
  };

  app.get(
    '/v1/sandboxes/:id/env',
    {
      config: { scope: 'sandbox:read' },
      schema: {
        tags: ['sandboxes'],
        summary: 'The names of the secret env vars of a sandbox (never the values)',
        security: SECURITY,
        params: SandboxParams,
        response: { 200: EnvNames },
      },
    },
    async (request) => {
      const row = await sandboxes.load(request, request.params.id, 'viewer');
      return { names: await namesOf(row.id) };
    },
  );

  app.put(
    '/v1/sandboxes/:id/env',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Add or replace secret env vars (merge); answers the names',
        security: SECURITY,
        params: SandboxParams,
        body: PutEnvBody,
        response: { 200: EnvNames },
      },
    },
    async (request) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      const vars = request.body.vars;
      const set = Object.keys(vars).sort();
      const names = await sandboxes.locks.run(row.id, async () => {
        // Destroyed while this request waited for the lock: nothing to write env into.
        if (!(await sandboxes.find(row.id))) throw apiError('SANDBOX_NOT_FOUND', { id: row.id });
        const existing = await namesOf(row.id);
        const total = new Set([...existing, ...set]).size;
        if (total > MAX_ENV_VARS) {
          throw apiError(
            'VALIDATION_ERROR',
            { fields: [{ path: '/vars', message: `a sandbox holds at most ${MAX_ENV_VARS} env vars` }] },
            `A sandbox holds at most ${MAX_ENV_VARS} env vars; this would make ${total}`,
          );
        }
        const rows = sandboxes.encryptEnv(row.id, vars);
        if (rows.length > 0) {
          await sandboxes.db
            .insertInto('sandbox_env')
            .values(rows)
            .onConflict((oc) =>
              oc.columns(['sandbox_id', 'name']).doUpdateSet((eb) => ({
                value: eb.ref('excluded.value'),
                updated_at: eb.ref('excluded.updated_at'),
              })),
            )
            .execute();
        }
        sandboxes.forgetEnv(row.id);
        return namesOf(row.id);
      });
      sandboxes.touch(row.id);
      await sandboxes.record(request, row, 'sandbox.env.set', { names: set });
      return { names };
    },
  );

  app.delete(
    '/v1/sandboxes/:id/env/:name',
    {
      config: { scope: 'sandbox:write' },
      schema: {
        tags: ['sandboxes'],
        summary: 'Remove one secret env var',
        security: SECURITY,
        params: EnvVarParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const row = await sandboxes.load(request, request.params.id, 'developer');
      const name = request.params.name;
      await sandboxes.locks.run(row.id, async () => {
        const removed = await sandboxes.db
          .deleteFrom('sandbox_env')
          .where('sandbox_id', '=', row.id)
          .where('name', '=', name)
          .executeTakeFirst();
        sandboxes.forgetEnv(row.id);
        if (Number(removed.numDeletedRows) === 0) {
          throw apiError('NOT_FOUND', { name }, `The sandbox has no env var ${name}`);
        }
      });
      sandboxes.touch(row.id);
      await sandboxes.record(request, row, 'sandbox.env.delete', { name });
      return reply.code(204).send(null);
    },
  );
}
