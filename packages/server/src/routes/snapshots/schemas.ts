import { Type } from 'typebox';
import { MAX_URL_TTL_SECONDS } from '../../services/signed-urls.js';

export {
  CreateSnapshotBody,
  RestoreSnapshotBody,
  SnapshotSchema,
} from '../../services/snapshot-view.js';
export { ListQuery, PageOf } from '../keys/schemas.js';
export { SandboxParams, SandboxSchema, SECURITY } from '../sandboxes/schemas.js';

/** `{id}` of a snapshot route. */
export const SnapshotParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** `GET /v1/snapshots/{id}/download` query. */
export const DownloadQuery = Type.Object(
  {
    ttl_seconds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_URL_TTL_SECONDS,
        description: 'How long the URL works (default 900 s, at most 24 h).',
      }),
    ),
  },
  { additionalProperties: false },
);

/** `GET /v1/snapshots/{id}/download` answer. */
export const DownloadLinkSchema = Type.Object({
  url: Type.String({ description: 'Fetches the archive without credentials until expires_at.' }),
  expires_at: Type.String({ format: 'date-time' }),
});

/** The signed archive URL's query. */
export const ArchiveQuery = Type.Object(
  {
    expires: Type.Integer({ minimum: 0, description: 'Unix seconds.' }),
    sig: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);
