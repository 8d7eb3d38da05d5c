import { Type } from 'typebox';
import { SANDBOX_STATUSES } from '../../services/sandboxes/states.js';

export { SECURITY } from '../auth/schemas.js';
export { ListQuery, PageOf } from '../keys/schemas.js';

/** `{id}` of a sandbox route. */
export const SandboxParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** The Sandbox object (API.md "Sandboxes"). */
export const SandboxSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  workspace_id: Type.String(),
  status: Type.Enum(SANDBOX_STATUSES),
  template: Type.String(),
  type: Type.Union([Type.Literal('opencode'), Type.Literal('openclaw'), Type.Null()]),
  isolation: Type.String(),
  resources: Type.Object({ cpu: Type.Number(), memory_mb: Type.Integer(), disk_mb: Type.Integer() }),
  network: Type.Object({
    mode: Type.Union([Type.Literal('internet'), Type.Literal('none'), Type.Literal('allowlist')]),
    allow: Type.Optional(Type.Array(Type.String())),
  }),
  metadata: Type.Record(Type.String(), Type.String()),
  ports: Type.Array(Type.Integer()),
  gui: Type.Boolean(),
  ws_url: Type.String(),
  preview_urls: Type.Record(Type.String(), Type.String()),
  vnc_url: Type.Union([Type.String(), Type.Null()]),
  timeout_seconds: Type.Integer(),
  idle_timeout_seconds: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  started_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  expires_at: Type.String({ format: 'date-time' }),
  last_activity_at: Type.String({ format: 'date-time' }),
  budget: Type.Object({ limit_usd: Type.Union([Type.String(), Type.Null()]), used_usd: Type.String() }),
  trust_score: Type.Union([Type.Number(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

/** `metadata[key]=value` list filters, as query keys. */
export const METADATA_FILTER = /^metadata\[([A-Za-z0-9_.:/-]{1,64})\]$/;

/** `GET /v1/sandboxes` query: page, filters, and `metadata[key]=value` pairs. */
export const SandboxListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    status: Type.Optional(Type.Enum(SANDBOX_STATUSES)),
    template: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  },
  {
    additionalProperties: false,
    patternProperties: { [METADATA_FILTER.source]: Type.String({ maxLength: 512 }) },
  },
);

/** The `metadata[key]=value` pairs of a list query. */
export function metadataFilter(query: Record<string, unknown>): Record<string, string> {
  const filter: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    const match = METADATA_FILTER.exec(key);
    if (match && typeof value === 'string') filter[match[1]!] = value;
  }
  return filter;
}
