import type { App } from '../../app.js';
import { DEFAULT_URL_TTL_SECONDS } from '../../services/signed-urls.js';
import { downloadLink, openArchive } from '../../services/snapshot-archive.js';
import { snapshotsOf } from '../../services/snapshots.js';
import { ArchiveQuery, DownloadLinkSchema, DownloadQuery, SECURITY, SnapshotParams } from './schemas.js';

const Binary = (description: string) => ({
  description,
  content: {
    'application/zstd': { schema: { type: 'string', format: 'binary' } },
    'application/gzip': { schema: { type: 'string', format: 'binary' } },
    'application/x-tar': { schema: { type: 'string', format: 'binary' } },
  },
});

/**
 * `GET /v1/snapshots/{id}/download` → a signed, expiring URL (any member), and that URL,
 * `GET /v1/snapshots/{id}/archive?expires=&sig=`: public, the signature is the credential;
 * streams the archive with its length (one byte range on request).
 */
export function registerSnapshotDownloadRoutes(app: App): void {
  app.get(
    '/v1/snapshots/:id/download',
    {
      config: { scope: 'snapshot:read' },
      schema: {
        tags: ['snapshots'],
        summary: 'A signed, time-limited URL that downloads the archive without credentials',
        security: SECURITY,
        params: SnapshotParams,
        querystring: DownloadQuery,
        response: { 200: DownloadLinkSchema },
      },
    },
    async (request) => {
      const service = snapshotsOf(app);
      const row = await service.loadReady(request, request.params.id, 'viewer');
      return downloadLink(service, row, request.query.ttl_seconds ?? DEFAULT_URL_TTL_SECONDS);
    },
  );

  app.get(
    '/v1/snapshots/:id/archive',
    {
      config: { public: true },
      schema: {
        tags: ['snapshots'],
        summary: 'The archive of a snapshot, through a signed URL from …/download',
        params: SnapshotParams,
        querystring: ArchiveQuery,
        description:
          'The signature is the credential: a missing, altered, expired or other-snapshot one is ' +
          '403 FORBIDDEN. Supports one `Range` (206 with Content-Range); one that cannot be ' +
          'satisfied is 400 BAD_REQUEST.',
        response: {
          200: Binary('The archive: a zstd (or gzip) tar; a plain tar when it holds memory'),
          206: Binary('The requested byte range'),
        },
      },
    },
    async (request, reply) => {
      const { expires, sig } = request.query;
      const archive = await openArchive(
        snapshotsOf(app),
        request.params.id,
        expires,
        sig,
        request.headers.range,
      );
      reply
        .header('content-type', archive.contentType)
        .header('content-length', String(archive.length))
        .header('content-disposition', `attachment; filename="${archive.filename}"`)
        .header('accept-ranges', 'bytes')
        .header('cache-control', 'private, no-store');
      if (archive.sha256) reply.header('etag', `"${archive.sha256}"`);
      if (archive.range) {
        reply
          .code(206)
          .header('content-range', `bytes ${archive.range.start}-${archive.range.end}/${archive.size}`);
      }
      return reply.send(archive.body);
    },
  );
}
