import { Type } from 'typebox';

export { CreateTemplateBody, ImportTemplateQuery } from '../../services/templates-spec.js';
export { TemplateSchema } from '../../services/templates-view.js';
export { PageOf } from '../keys/schemas.js';
export { SECURITY } from '../sandboxes/schemas.js';

/** `{id}` of a template route: a built-in's name, a custom template's `tpl_…` id, or its name. */
export const TemplateParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' }),
});

/** `?workspace_id=` for name lookups by a dashboard session (keys act in their own workspace). */
export const WorkspaceQuery = Type.Object(
  { workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
  { additionalProperties: false },
);

/** `GET /v1/templates` query. */
export const TemplateListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Type.String({ maxLength: 1024 })),
    workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
