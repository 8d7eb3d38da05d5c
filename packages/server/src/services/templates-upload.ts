import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config.js';
import { apiError } from '../errors.js';
import { checkDeclaredLength, withLimitedBody } from './sandboxes/files.js';

/** An uploaded file in `<data>/tmp`, removed by its owner when done. */
export interface Upload {
  path: string;
  bytes: number;
  remove(): Promise<void>;
}

/**
 * Streams a request body into a new private file under `<data>/tmp` (never whole in memory).
 * Over `config.fileUploadLimitBytes` (declared or counted) is 413 PAYLOAD_TOO_LARGE; an empty
 * body is 400. Nothing is left behind on failure.
 */
export async function receiveUpload(
  config: Config,
  headers: IncomingHttpHeaders,
  body: Readable | null,
): Promise<Upload> {
  const limitBytes = config.fileUploadLimitBytes;
  checkDeclaredLength(headers, limitBytes);
  const dir = join(config.dataDir, 'tmp');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `template-upload-${randomBytes(12).toString('hex')}.tar`);
  const remove = () => rm(path, { force: true });
  try {
    const { bytes } = await withLimitedBody(body, limitBytes, (data) =>
      pipeline(data, createWriteStream(path, { flags: 'wx', mode: 0o600 })),
    );
    if (bytes === 0) throw apiError('BAD_REQUEST', {}, 'The request body is empty: send the image tarball');
    return { path, bytes, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
