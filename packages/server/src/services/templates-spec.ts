import { BUILTIN_NAMES } from '@corral/runtime';
import { type Static, Type } from 'typebox';
import { apiError } from '../errors.js';

/*
 * What a custom template is created from (the single source of these types: routes use the
 * schemas, the service the Static types).
 */

/** Most Debian packages one template lists. */
export const MAX_TEMPLATE_PACKAGES = 200;
/** Most run steps one template has. */
export const MAX_TEMPLATE_RUN_STEPS = 50;

/**
 * A template name: what sandboxes are created with. Not a built-in's and not `tpl_…` (that is
 * how ids look), so a name never shadows either.
 */
export const TemplateName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
  description: '1-64 letters, digits, "_", "." or "-"; not a built-in name, not starting with "tpl_".',
});

/**
 * A Debian package name (policy 5.6.1): lowercase letters, digits, `+`, `-`, `.`; at least two
 * characters, starting with a letter or digit. Nothing a shell would read as more than a word.
 */
export const DebianPackage = Type.String({ pattern: '^[a-z0-9][a-z0-9+.-]+$', maxLength: 100 });

/** `POST /v1/templates` with a JSON body: Debian (the suite's) + packages + run steps. */
export const CreateTemplateBody = Type.Object(
  {
    name: TemplateName,
    workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    suite: Type.Optional(
      Type.String({ pattern: '^[a-z][a-z0-9-]{1,31}$', description: 'Debian suite; default bookworm.' }),
    ),
    packages: Type.Array(DebianPackage, { maxItems: MAX_TEMPLATE_PACKAGES, uniqueItems: true }),
    run: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 10_000, pattern: '\\S' }), {
        maxItems: MAX_TEMPLATE_RUN_STEPS,
        description:
          'Shell steps run in order as root inside the new tree (chrooted, after the packages are installed); ' +
          'a step that exits non-zero fails the build. They run on the server host, not in a sandbox: ' +
          'instance admins only (403 FORBIDDEN otherwise).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateTemplateInput = Static<typeof CreateTemplateBody>;

/** `POST /v1/templates?name=` with an image tarball body. */
export const ImportTemplateQuery = Type.Object(
  {
    name: TemplateName,
    workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type ImportTemplateInput = Static<typeof ImportTemplateQuery>;

/** 400 VALIDATION_ERROR when `name` is reserved (a built-in's, or id-shaped). */
export function checkTemplateName(name: string, path: string): void {
  const reserved = BUILTIN_NAMES.includes(name.toLowerCase()) || name.toLowerCase().startsWith('tpl_');
  if (reserved) {
    throw apiError('VALIDATION_ERROR', {
      fields: [{ path, message: 'is reserved (a built-in template name, or shaped like a template id)' }],
    });
  }
}
