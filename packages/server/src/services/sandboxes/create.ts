import type { FastifyRequest } from 'fastify';
import { apiError } from '../../errors.js';
import { newId } from '../../ids.js';
import { planFor } from '../../plans.js';
import { isoNow } from '../../store/db.js';
import type { SandboxRow } from '../../store/schema.js';
import { requireAuth } from '../access.js';
import { withDesktop } from './desktop.js';
import { requireDesktopTemplate, wantsDesktop } from './desktop-template.js';
import { runtimeResources, type SandboxService } from './service.js';
import { type CreateSandboxInput, normalizeCreate } from './spec.js';

/**
 * Creates a sandbox: checks the plan's caps, stores it as `starting` (with its encrypted
 * env), asks the runtime for it, and stores the outcome (`running`, or `error`). The row is
 * written before the runtime call, so a crash in between is settled by reconciliation.
 */
export async function createSandbox(
  service: SandboxService,
  request: FastifyRequest,
  input: CreateSandboxInput,
): Promise<SandboxRow> {
  const runtime = service.runtime;
  const workspace = await service.callerWorkspace(request, input.workspace_id, 'developer');
  const plan = planFor(workspace.plan);
  const spec = normalizeCreate(input, plan);
  const template = await service.resolveTemplate(workspace.id, spec.template);
  const gui = wantsDesktop(input.gui, spec.template);
  if (gui) await requireDesktopTemplate(service, spec.template, template);
  const auth = requireAuth(request);
  const id = newId('sbx');
  const now = new Date();
  const row: SandboxRow = {
    id,
    workspace_id: workspace.id,
    name: spec.name ?? id,
    status: 'starting',
    template: spec.template,
    type: spec.type,
    isolation: runtime.name,
    resources: JSON.stringify(spec.resources),
    network: JSON.stringify(spec.network),
    metadata: JSON.stringify(spec.metadata),
    ports: JSON.stringify(spec.ports),
    gui: gui ? 1 : 0,
    budget_usd: spec.budgetUsd,
    timeout_seconds: spec.timeoutSeconds,
    idle_timeout_seconds: spec.idleTimeoutSeconds,
    trust_score: null,
    error: null,
    created_by: auth.userId,
    created_at: now.toISOString(),
    updated_at: now.toISOString(),
    started_at: null,
    expires_at: new Date(now.getTime() + spec.timeoutSeconds * 1000).toISOString(),
    last_activity_at: now.toISOString(),
    deleted_at: null,
  };

  await service.withActiveSlot(workspace.id, plan, async () => {
    await service.db.transaction().execute(async (trx) => {
      await trx.insertInto('sandboxes').values(row).execute();
      const env = service.encryptEnv(id, spec.env);
      if (env.length > 0) await trx.insertInto('sandbox_env').values(env).execute();
    });
  });

  // Under the sandbox's lock: a periodic reconciliation never sees the runtime half-way.
  await service.locks.run(id, async () => {
    try {
      await runtime.create({
        id,
        template,
        resources: { ...runtimeResources(spec.resources) },
        // Secrets are not handed to the runtime (its state is plain files): every exec and
        // terminal gets them from the store, decrypted, instead.
        env: {},
        network: spec.network,
        metadata: spec.metadata,
      });
    } catch (err) {
      service.metrics.sandboxCreateTotal.inc({ result: 'error' });
      // Nothing of it stays in the runtime; the caller never got its id, so the row is closed
      // (kept, deleted, for the audit trail) rather than listed as a sandbox in `error`.
      await runtime.destroy(id).catch(() => undefined);
      const message = err instanceof Error ? err.message : String(err);
      await service.setStatus(id, 'error', { error: message.slice(0, 2000), deleted_at: isoNow() });
      await service.record(request, row, 'sandbox.create', { status: 'error', template: spec.template });
      throw err;
    }
  });
  service.metrics.sandboxCreateTotal.inc({ result: 'ok' });
  const started = await service.setStatus(id, 'running', { started_at: isoNow() });
  await service.record(request, row, 'sandbox.create', { template: spec.template });
  return withDesktop(service, started, request);
}

/**
 * A template name or a custom template id (`tpl_…` of this workspace, built) → what the
 * runtime's template store resolves. Unknown → 404 TEMPLATE_NOT_FOUND.
 */
export async function resolveTemplate(
  service: SandboxService,
  workspaceId: string,
  template: string,
): Promise<string> {
  if (service.templates.builtins.includes(template)) return template;
  const row = await service.db
    .selectFrom('templates')
    .select(['runtime_id', 'status'])
    .where('workspace_id', '=', workspaceId)
    .where('deleted_at', 'is', null)
    .where((eb) => eb.or([eb('id', '=', template), eb('name', '=', template)]))
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
  if (!row) throw apiError('TEMPLATE_NOT_FOUND', { template });
  if (row.status !== 'ready' || !row.runtime_id) {
    throw apiError(
      'INVALID_STATE',
      { template, status: row.status },
      `Template ${template} is ${row.status}`,
    );
  }
  return row.runtime_id;
}
