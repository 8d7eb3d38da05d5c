import type { Readable } from 'node:stream';
import { DEFAULT_SUITE, isRuntimeError, type TemplateStore } from '@corral/runtime';
import type { FastifyRequest } from 'fastify';
import { apiError } from '../errors.js';
import { newId } from '../ids.js';
import type { AuditLog } from '../store/audit.js';
import { isoNow } from '../store/db.js';
import { type Page, type PageRequest, paginate } from '../store/pagination.js';
import type { TemplateRow } from '../store/schema.js';
import { actorOf, requireAuth, requireRole } from './access.js';
import type { SandboxService } from './sandboxes/service.js';
import { TemplateBuilds } from './templates-builds.js';
import { builtinTemplate, builtinTemplates } from './templates-builtins.js';
import { type CreateTemplateInput, checkTemplateName, type ImportTemplateInput } from './templates-spec.js';
import { receiveUpload } from './templates-upload.js';
import { type StoredDefinition, type TemplateView, templateView } from './templates-view.js';

/** List query of `GET /v1/templates`. */
export interface TemplateListQuery extends PageRequest {
  workspace_id?: string | undefined;
}

/**
 * Custom templates of a workspace (the `templates` table) beside the runtime's built-ins:
 * listed together, built or imported in the background, deleted when no sandbox uses them.
 */
export class TemplateService {
  readonly builds: TemplateBuilds;

  constructor(
    private readonly sandboxes: SandboxService,
    private readonly audit: AuditLog,
  ) {
    this.builds = new TemplateBuilds(sandboxes.db, sandboxes.log);
  }

  get #db() {
    return this.sandboxes.db;
  }

  /** Built-ins (first page only) then the workspace's custom templates, newest first. */
  async list(request: FastifyRequest, query: TemplateListQuery): Promise<Page<TemplateView>> {
    const workspace = await this.sandboxes.callerWorkspace(request, query.workspace_id, 'viewer');
    const page = await paginate(
      this.#db
        .selectFrom('templates')
        .selectAll()
        .where('workspace_id', '=', workspace.id)
        .where('deleted_at', 'is', null),
      query,
    );
    const custom = page.data.map((row) => templateView(row));
    if (query.cursor) return { data: custom, next_cursor: page.next_cursor };
    return { data: [...(await builtinTemplates(this.#store)), ...custom], next_cursor: page.next_cursor };
  }

  /** One template with its log: a built-in by name, a custom one by id or (in the caller's workspace) name. */
  async get(request: FastifyRequest, idOrName: string, workspaceId?: string): Promise<TemplateView> {
    const builtin = await builtinTemplate(this.#store, idOrName);
    if (builtin) return { ...builtin, log: '' };
    return templateView(await this.#load(request, idOrName, workspaceId, 'viewer'), true);
  }

  /** Stores a new template `building` from packages and run steps, and builds it in the background. */
  async createBuild(request: FastifyRequest, input: CreateTemplateInput): Promise<TemplateView> {
    checkTemplateName(input.name, '/name');
    if (input.run?.length) await this.#requireInstanceAdmin(request);
    const store = this.sandboxes.templates;
    const definition: StoredDefinition = {
      ...(input.suite ? { suite: input.suite } : {}),
      packages: input.packages,
      run: input.run ?? [],
    };
    const row = await this.#insert(request, input.workspace_id, input.name, 'packages', definition);
    const steps = definition.run?.length ?? 0;
    this.builds.start({
      id: row.id,
      describe: `building ${input.name}: Debian ${input.suite ?? DEFAULT_SUITE} + ${input.packages.length} package(s)${input.packages.length ? ` (${input.packages.join(' ')})` : ''}, ${steps} run step(s)`,
      produce: (options) =>
        store.build(
          {
            name: input.name,
            packages: input.packages,
            ...(input.suite ? { suite: input.suite } : {}),
            ...(input.run?.length ? { run: input.run } : {}),
          },
          options,
        ),
    });
    await this.#record(request, row, 'template.create', { source: 'packages', packages: input.packages });
    return templateView(row);
  }

  /**
   * Receives an image tarball (OCI layout or `docker save`) into `<data>/tmp` — 413 over
   * `fileUploadLimitBytes` — stores the template `building` and imports it in the background.
   */
  async createImport(
    request: FastifyRequest,
    input: ImportTemplateInput,
    body: Readable | null,
  ): Promise<TemplateView> {
    checkTemplateName(input.name, '/name');
    const store = this.sandboxes.templates;
    // Access and the name are checked before the body is read.
    await this.#checkCreate(request, input.workspace_id, input.name);
    const upload = await receiveUpload(this.sandboxes.config, request.headers, body);
    let row: TemplateRow;
    try {
      row = await this.#insert(request, input.workspace_id, input.name, 'image', {
        upload_bytes: upload.bytes,
      });
    } catch (err) {
      await upload.remove();
      throw err;
    }
    this.builds.start({
      id: row.id,
      describe: `importing ${input.name} from an image tarball of ${upload.bytes} bytes`,
      produce: (options) => store.importImage(upload.path, input.name, options),
      cleanup: () => upload.remove(),
      redact: (text) => text.split(upload.path).join('<upload>'),
    });
    await this.#record(request, row, 'template.import', { source: 'image', upload_bytes: upload.bytes });
    return templateView(row);
  }

  /**
   * Deletes a custom template: 403 for built-ins, 409 CONFLICT while a live sandbox uses it. A
   * build under way is stopped first. The built tree goes too, unless another template shares it.
   */
  async remove(request: FastifyRequest, idOrName: string, workspaceId?: string): Promise<void> {
    if (await builtinTemplate(this.#store, idOrName)) {
      throw apiError('FORBIDDEN', { template: idOrName }, 'Built-in templates cannot be deleted');
    }
    const row = await this.#load(request, idOrName, workspaceId, 'developer');
    await this.sandboxes.locks.run(`templates:${row.workspace_id}`, async () => {
      const users = await this.#sandboxesOn(row);
      if (users.length > 0) {
        throw apiError(
          'CONFLICT',
          { template: row.id, sandboxes: users },
          `Template ${row.name} is used by ${users.length === 10 ? '10 or more' : users.length} sandbox(es); delete them first`,
        );
      }
      await this.builds.cancel(row.id, 'cancelled: the template was deleted');
      const current = await this.#db
        .selectFrom('templates')
        .select('runtime_id')
        .where('id', '=', row.id)
        .executeTakeFirstOrThrow();
      await this.#db
        .updateTable('templates')
        .set({ deleted_at: isoNow() })
        .where('id', '=', row.id)
        .execute();
      if (!current.runtime_id) return;
      // A sandbox create that resolved the template just before it was marked deleted may have
      // stored its row since: its tree then stays (an orphan on disk, never a broken sandbox).
      if ((await this.#sandboxesOn(row)).length > 0) {
        this.sandboxes.log.warn(
          { template_id: row.id },
          'template deleted while a sandbox was created on it; tree kept',
        );
        return;
      }
      await this.#removeTree(current.runtime_id);
    });
    await this.#record(request, row, 'template.delete', { name: row.name });
  }

  /** Up to 10 live sandboxes of the template's workspace created from it (by id or by name). */
  async #sandboxesOn(row: TemplateRow): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('sandboxes')
      .select('id')
      .where('workspace_id', '=', row.workspace_id)
      .where('deleted_at', 'is', null)
      .where('template', 'in', [row.id, row.name])
      .limit(10)
      .execute();
    return rows.map((sandbox) => sandbox.id);
  }

  /**
   * Run steps execute as root in a chroot on the server's own host while the tree is built (not
   * in a sandbox: a chroot does not contain root), so only instance admins may submit them.
   */
  async #requireInstanceAdmin(request: FastifyRequest): Promise<void> {
    const auth = requireAuth(request);
    const user =
      auth.resolved?.user ??
      (await this.#db
        .selectFrom('users')
        .select('is_admin')
        .where('id', '=', auth.userId)
        .executeTakeFirst());
    if (user?.is_admin === 1) return;
    throw apiError(
      'FORBIDDEN',
      { field: '/run', reason: 'instance_admin_required' },
      'Run steps execute as root on the server host during the build; only instance admins may submit them (packages need no such right)',
    );
  }

  /** Marks builds a previous run of the server left `building` as failed (they died with it). */
  async markInterrupted(): Promise<number> {
    const result = await this.#db
      .updateTable('templates')
      .set({ status: 'failed', error: 'interrupted by a restart', finished_at: isoNow() })
      .where('status', '=', 'building')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Removes a built tree unless another live template row still points at it. */
  async #removeTree(runtimeId: string): Promise<void> {
    const shared = await this.#db
      .selectFrom('templates')
      .select('id')
      .where('runtime_id', '=', runtimeId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (shared) return;
    await this.sandboxes.templates.remove(runtimeId).catch((err: unknown) => {
      if (isRuntimeError(err, 'TEMPLATE_NOT_FOUND')) return;
      this.sandboxes.log.warn({ err, runtime_id: runtimeId }, 'could not remove a template tree');
    });
  }

  /** The workspace a create acts in (developer), with the name free there (409 CONFLICT otherwise). */
  async #checkCreate(request: FastifyRequest, workspaceId: string | undefined, name: string) {
    const workspace = await this.sandboxes.callerWorkspace(request, workspaceId, 'developer');
    const taken = await this.#db
      .selectFrom('templates')
      .select(['id', 'status'])
      .where('workspace_id', '=', workspace.id)
      .where('name', '=', name)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (taken) {
      throw apiError(
        'CONFLICT',
        { name, template: taken.id, status: taken.status },
        `A template named ${name} exists in this workspace (${taken.status}); delete it first`,
      );
    }
    return workspace;
  }

  async #insert(
    request: FastifyRequest,
    workspaceId: string | undefined,
    name: string,
    source: 'packages' | 'image',
    definition: StoredDefinition,
  ): Promise<TemplateRow> {
    const auth = requireAuth(request);
    const workspace = await this.sandboxes.callerWorkspace(request, workspaceId, 'developer');
    return this.sandboxes.locks.run(`templates:${workspace.id}`, async () => {
      await this.#checkCreate(request, workspace.id, name);
      const row: TemplateRow = {
        id: newId('tpl'),
        workspace_id: workspace.id,
        name,
        status: 'building',
        source,
        definition: JSON.stringify(definition),
        runtime_id: null,
        size_bytes: null,
        log: '',
        error: null,
        created_by: auth.userId,
        created_at: isoNow(),
        finished_at: null,
        deleted_at: null,
      };
      await this.#db.insertInto('templates').values(row).execute();
      return row;
    });
  }

  /** A live custom template the caller may see with `minRole`; else 404 TEMPLATE_NOT_FOUND. */
  async #load(
    request: FastifyRequest,
    idOrName: string,
    workspaceId: string | undefined,
    minRole: 'viewer' | 'developer',
  ): Promise<TemplateRow> {
    let row: TemplateRow | undefined;
    if (idOrName.startsWith('tpl_')) {
      row = await this.#db
        .selectFrom('templates')
        .selectAll()
        .where('id', '=', idOrName)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
    } else {
      const workspace = await this.sandboxes
        .callerWorkspace(request, workspaceId, 'viewer')
        .catch(() => null);
      row = workspace
        ? await this.#db
            .selectFrom('templates')
            .selectAll()
            .where('workspace_id', '=', workspace.id)
            .where('name', '=', idOrName)
            .where('deleted_at', 'is', null)
            .executeTakeFirst()
        : undefined;
    }
    if (!row) throw apiError('TEMPLATE_NOT_FOUND', { template: idOrName });
    await requireRole(request, row.workspace_id, minRole, 'TEMPLATE_NOT_FOUND');
    return row;
  }

  /** The template store, or null without a runtime (built-ins are then listed `available`). */
  get #store(): TemplateStore | null {
    return this.sandboxes.hasRuntime ? this.sandboxes.templates : null;
  }

  async #record(request: FastifyRequest, row: TemplateRow, action: string, details: Record<string, unknown>) {
    const actor = actorOf(request);
    await this.audit.record({
      workspaceId: row.workspace_id,
      actorType: actor.actorType,
      actorId: actor.actorId,
      action,
      targetType: 'template',
      targetId: row.id,
      ip: actor.ip,
      details: { ...actor.details, ...details },
    });
  }
}
