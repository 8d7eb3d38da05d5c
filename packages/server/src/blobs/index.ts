import { join } from 'node:path';
import { FilesystemBlobStore } from './fs.js';
import type { BlobStore } from './interface.js';

export { FilesystemBlobStore } from './fs.js';
export * from './interface.js';

/** Where the blob store keeps its objects (only the data directory matters for now). */
export interface BlobStoreConfig {
  dataDir: string;
}

/**
 * The configured blob store: the filesystem driver under `<dataDir>/blobs`. An S3-compatible
 * driver is one more file and one more branch here.
 */
export function createBlobStore(config: BlobStoreConfig): BlobStore {
  return new FilesystemBlobStore(join(config.dataDir, 'blobs'));
}
