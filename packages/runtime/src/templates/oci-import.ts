import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { RuntimeError } from '../errors.js';

/** sha256 (hex) of a file's bytes. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function importImageTree(
  _tarPath: string,
  _rootfs: string,
  _workDir: string,
  _log: (line: string) => void,
  _signal?: AbortSignal,
): Promise<{ format: 'oci' | 'docker'; layers: number }> {
  throw new RuntimeError('UNSUPPORTED', 'not yet');
}
