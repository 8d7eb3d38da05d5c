import type { Readable } from 'node:stream';
import { apiError } from '../errors.js';
import { parseRange } from '../http-range.js';
import type { SnapshotRow } from '../store/schema.js';
import { expiryFor } from './signed-urls.js';
import type { SnapshotService } from './snapshots.js';

/** The purpose a snapshot download URL is signed for. */
export const SNAPSHOT_DOWNLOAD = 'snapshot-download';

/** `{url, expires_at}` of `GET /v1/snapshots/{id}/download`. */
export interface DownloadLink {
  url: string;
  expires_at: string;
}

/**
 * A signed, expiring URL for the archive of snapshot `row`:
 * `<publicUrl>/v1/snapshots/{id}/archive?expires=<unix>&sig=<hmac>`; it fetches that one
 * snapshot, without credentials, until it expires.
 */
export function downloadLink(service: SnapshotService, row: SnapshotRow, ttlSeconds: number): DownloadLink {
  const expires = expiryFor(ttlSeconds);
  const sig = service.signer.sign({ purpose: SNAPSHOT_DOWNLOAD, id: row.id, expires });
  const base = service.config.publicUrl.replace(/\/+$/, '');
  const query = new URLSearchParams({ expires: String(expires), sig });
  return {
    url: `${base}/v1/snapshots/${encodeURIComponent(row.id)}/archive?${query}`,
    expires_at: new Date(expires * 1000).toISOString(),
  };
}

/** An archive ready to send: the body stream and the headers that describe it. */
export interface ArchiveResponse {
  body: Readable;
  /** Bytes in `body`. */
  length: number;
  /** Size of the whole archive. */
  size: number;
  /** The served part, when the request asked for a satisfiable single range. */
  range: { start: number; end: number } | null;
  contentType: string;
  filename: string;
  sha256: string | null;
}

/**
 * Checks a download signature (403 FORBIDDEN when it is missing, altered, for another
 * snapshot or expired — before anything about the snapshot is looked up) and opens the
 * archive, or the single byte range `rangeHeader` asks for.
 */
export async function openArchive(
  service: SnapshotService,
  id: string,
  expires: number,
  sig: string,
  rangeHeader: string | undefined,
): Promise<ArchiveResponse> {
  if (!service.signer.verify({ purpose: SNAPSHOT_DOWNLOAD, id, expires }, sig)) {
    throw apiError(
      'FORBIDDEN',
      { reason: 'invalid_or_expired_signature' },
      'The download link is invalid or has expired',
    );
  }
  const row = await service.find(id);
  if (row?.status !== 'ready' || !row.blob_key) throw apiError('SNAPSHOT_NOT_FOUND', { id });
  const stat = await service.blobs.stat(row.blob_key);
  if (!stat) throw apiError('SNAPSHOT_NOT_FOUND', { id });
  const format = await sniffFormat(service, row.blob_key, stat.size);
  const range = parseRange(rangeHeader, stat.size, 'archive');
  const body = await service.blobs.get(row.blob_key, range ?? undefined);
  return {
    body,
    length: range ? range.end - range.start + 1 : stat.size,
    size: stat.size,
    range,
    contentType: format.contentType,
    filename: `${id}${format.extension}`,
    sha256: row.sha256,
  };
}

const FORMATS = [
  { magic: [0x28, 0xb5, 0x2f, 0xfd], contentType: 'application/zstd', extension: '.tar.zst' },
  { magic: [0x1f, 0x8b], contentType: 'application/gzip', extension: '.tar.gz' },
];
const TAR = { contentType: 'application/x-tar', extension: '.tar' };

/**
 * The archive's format from its first bytes: the runtime writes a zstd (or, without zstd,
 * gzip) tar, and a memory snapshot (gVisor) is a plain tar.
 */
async function sniffFormat(service: SnapshotService, key: string, size: number) {
  if (size < 4) return TAR;
  const chunks: Buffer[] = [];
  for await (const chunk of await service.blobs.get(key, { start: 0, end: 3 })) chunks.push(chunk as Buffer);
  const head = Buffer.concat(chunks);
  return FORMATS.find((f) => f.magic.every((byte, i) => head[i] === byte)) ?? TAR;
}
