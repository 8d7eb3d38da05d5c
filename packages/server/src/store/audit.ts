import type { Kysely } from 'kysely';
import { newId } from '../ids.js';
import { isoNow } from './db.js';
import { type Page, type PageRequest, paginate } from './pagination.js';
import type { ActorType, Database } from './schema.js';

/** An audit event as the API shows it (`details` parsed). */
export interface AuditEvent {
  id: string;
  workspace_id: string | null;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  created_at: string;
}

/** What to record: who (`actor_*`) did what (`action`, e.g. `sandbox.create`) to which target. */
export interface AuditRecord {
  workspaceId?: string | null;
  actorType: ActorType;
  actorId?: string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  ip?: string | null;
  details?: Record<string, unknown>;
}

type Row = Omit<AuditEvent, 'details'> & { details: string };

function toEvent(row: Row): AuditEvent {
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(row.details) as Record<string, unknown>;
  } catch {
    // a row written by hand with bad JSON still lists; its details are just empty
  }
  return { ...row, details };
}

/** The audit log: an append-only record of who did what, when. */
export class AuditLog {
  constructor(private readonly db: Kysely<Database>) {}

  /** Appends one event; returns it. Pass a transaction as `db` to record atomically. */
  async record(event: AuditRecord, db: Kysely<Database> = this.db): Promise<AuditEvent> {
    const row: Row = {
      id: newId('evt'),
      workspace_id: event.workspaceId ?? null,
      actor_type: event.actorType,
      actor_id: event.actorId ?? null,
      action: event.action,
      target_type: event.targetType ?? null,
      target_id: event.targetId ?? null,
      ip: event.ip ?? null,
      details: JSON.stringify(event.details ?? {}),
      created_at: isoNow(),
    };
    await db.insertInto('audit_events').values(row).execute();
    return toEvent(row);
  }

  /** Events about one target (e.g. a sandbox), newest first. */
  async listForTarget(targetId: string, page: PageRequest = {}): Promise<Page<AuditEvent>> {
    const result = await paginate(
      this.db.selectFrom('audit_events').selectAll().where('target_id', '=', targetId),
      page,
    );
    return { data: result.data.map(toEvent), next_cursor: result.next_cursor };
  }

  /** Events in one workspace, newest first. */
  async listForWorkspace(workspaceId: string, page: PageRequest = {}): Promise<Page<AuditEvent>> {
    const result = await paginate(
      this.db.selectFrom('audit_events').selectAll().where('workspace_id', '=', workspaceId),
      page,
    );
    return { data: result.data.map(toEvent), next_cursor: result.next_cursor };
  }
}
