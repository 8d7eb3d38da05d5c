import { type Static, Type } from 'typebox';
import type { SnapshotRow } from '../store/schema.js';

/** A snapshot's status: `creating → ready`, or `error` when the runtime or the store failed. */
export const SNAPSHOT_STATUSES = ['creating', 'ready', 'error'] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

/** The Snapshot object (API.md "Sandboxes": snapshots). */
export const SnapshotSchema = Type.Object({
  id: Type.String(),
  sandbox_id: Type.String(),
  workspace_id: Type.String(),
  name: Type.String(),
  status: Type.Enum(SNAPSHOT_STATUSES),
  size_bytes: Type.Union([Type.Integer(), Type.Null()]),
  sha256: Type.Union([Type.String(), Type.Null()], { description: 'sha256 (hex) of the archive.' }),
  includes_memory: Type.Boolean(),
  template: Type.String({ description: 'The template of the sandbox it was taken from.' }),
  error: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
});
export type SnapshotView = Static<typeof SnapshotSchema>;

/** `POST /v1/sandboxes/{id}/snapshots` body. */
export const CreateSnapshotBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]+$' })),
    include_memory: Type.Optional(
      Type.Boolean({ description: 'Keep process memory too (only where the isolation supports it).' }),
    ),
  },
  { additionalProperties: false },
);
export type CreateSnapshotInput = Static<typeof CreateSnapshotBody>;

/** `POST /v1/snapshots/{id}/restore` body. */
export const RestoreSnapshotBody = Type.Object(
  {
    sandbox_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'Restore into this sandbox; without it, into a new one made from the template.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type RestoreSnapshotInput = Static<typeof RestoreSnapshotBody>;

/** The API view of a snapshot row. */
export function toSnapshotView(row: SnapshotRow): SnapshotView {
  return {
    id: row.id,
    sandbox_id: row.sandbox_id,
    workspace_id: row.workspace_id,
    name: row.name,
    status: row.status as SnapshotStatus,
    size_bytes: row.size_bytes === null ? null : Number(row.size_bytes),
    sha256: row.sha256,
    includes_memory: row.includes_memory === 1,
    template: row.template,
    error: row.error,
    created_at: row.created_at,
  };
}

/**
 * The blob key of snapshot `id`. Ids are mixed-case and blob keys lowercase (case-insensitive
 * filesystems and buckets must not merge two), so the id goes in as hex.
 */
export function snapshotBlobKey(id: string): string {
  return `snapshots/${Buffer.from(id, 'utf8').toString('hex')}`;
}
