import { BUILTIN_DEFINITIONS, DEFAULT_SUITE, type Template } from '@corral/runtime';
import { type Static, Type } from 'typebox';
import type { TemplateRow } from '../store/schema.js';

/*
 * The Template object of the API (API.md "Templates"): the schema routes answer with, and the
 * conversions from a built-in name or a `templates` row to it.
 */

/** Where a template comes from. */
export const TEMPLATE_SOURCES = ['builtin', 'packages', 'image'] as const;
/** `available`: a built-in not built on this server yet (the first sandbox builds it). */
export const TEMPLATE_STATUSES = ['available', 'building', 'ready', 'failed'] as const;
export type TemplateStatus = (typeof TEMPLATE_STATUSES)[number];
export type TemplateSource = (typeof TEMPLATE_SOURCES)[number];

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

/** A template, built in or custom; `log` only on `GET /v1/templates/{id}`. */
export const TemplateSchema = Type.Object({
  id: Type.String({ description: 'The name for built-ins; `tpl_…` for custom templates.' }),
  name: Type.String({ description: 'What `POST /v1/sandboxes {template}` takes (the id works too).' }),
  builtin: Type.Boolean(),
  status: Type.Enum(TEMPLATE_STATUSES),
  source: Type.Enum(TEMPLATE_SOURCES),
  workspace_id: Nullable(Type.String()),
  suite: Nullable(Type.String({ description: 'Debian suite (built templates).' })),
  packages: Nullable(Type.Array(Type.String(), { description: 'Debian packages on top of the base set.' })),
  run: Nullable(Type.Array(Type.String(), { description: 'Shell steps run as root inside the tree.' })),
  runtime_id: Nullable(
    Type.String({ description: 'The built tree (content-addressed; shared by equal builds).' }),
  ),
  size_bytes: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  created_at: Nullable(Type.String({ format: 'date-time' })),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
  log: Type.Optional(
    Type.String({ description: 'Build or import progress, the last 1 MiB (only on GET by id).' }),
  ),
});
export type TemplateView = Static<typeof TemplateSchema>;

/** What `templates.definition` holds (JSON). */
export interface StoredDefinition {
  suite?: string;
  packages?: string[];
  run?: string[];
  /** Imports: the uploaded tarball's size. */
  upload_bytes?: number;
}

/** A built-in as the API shows it; `built` is its tree on this server, if made yet. */
export function builtinView(name: string, built: Template | undefined): TemplateView {
  const definition = BUILTIN_DEFINITIONS[name];
  return {
    id: name,
    name,
    builtin: true,
    status: built ? 'ready' : 'available',
    source: 'builtin',
    workspace_id: null,
    suite: definition?.suite ?? DEFAULT_SUITE,
    packages: [...(definition?.packages ?? [])],
    run: [...(definition?.run ?? [])],
    runtime_id: built?.id ?? null,
    size_bytes: built?.sizeBytes ?? null,
    error: null,
    created_at: built?.createdAt ?? null,
    finished_at: built?.createdAt ?? null,
  };
}

/** A custom template row as the API shows it (with its log when `withLog`). */
export function templateView(row: TemplateRow, withLog = false): TemplateView {
  let definition: StoredDefinition = {};
  try {
    definition = JSON.parse(row.definition) as StoredDefinition;
  } catch {
    // a hand-edited row still shows
  }
  const built = row.source === 'packages';
  const view: TemplateView = {
    id: row.id,
    name: row.name,
    builtin: false,
    status: row.status as TemplateStatus,
    source: row.source as TemplateSource,
    workspace_id: row.workspace_id,
    suite: built ? (definition.suite ?? DEFAULT_SUITE) : null,
    packages: built ? (definition.packages ?? []) : null,
    run: built ? (definition.run ?? []) : null,
    runtime_id: row.runtime_id,
    size_bytes: row.size_bytes === null ? null : Number(row.size_bytes),
    error: row.error,
    created_at: row.created_at,
    finished_at: row.finished_at,
  };
  if (withLog) view.log = row.log;
  return view;
}
