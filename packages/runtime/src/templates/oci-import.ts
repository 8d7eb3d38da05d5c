import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { RuntimeError } from '../errors.js';
import {
  applyDirectoryTimes,
  applyWhiteouts,
  CAPABILITY_XATTR,
  collectWhiteout,
  type DirectoryTimes,
  entryComponents,
  resolveInRoot,
  type Whiteouts,
  writeEntry,
} from './layer.js';
import { readTar, TarFormatError } from './tar.js';

/** sha256 (hex) of a file's bytes. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string };
}

/** One layer to apply: a file in the unpacked image, with what its content must hash to. */
interface LayerSource {
  /** Host path of the layer file. */
  file: string;
  /** sha256 hex of the file as stored (OCI blob digest), when known. */
  blobSha256?: string;
  /** sha256 hex of the uncompressed tar (config `rootfs.diff_ids`), when known. */
  diffSha256?: string;
}

const INDEX_MEDIA_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const MAX_INDEX_DEPTH = 4;

/**
 * Unpack an OCI image layout tarball or a `docker save` tarball into `rootfs`: the outer tar goes
 * to `workDir`, then the layers are applied in order with their whiteouts. Every blob's digest
 * is checked; TEMPLATE_INVALID on anything malformed or unsafe.
 */
export async function importImageTree(
  tarPath: string,
  rootfs: string,
  workDir: string,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<{ format: 'oci' | 'docker'; layers: number }> {
  try {
    await mkdir(workDir);
    log(`unpacking ${tarPath}`);
    await applyTar(workDir, createReadStream(tarPath), signal);
    const isOci = await exists(workDir, 'oci-layout');
    const layers = isOci ? await ociLayers(workDir) : await dockerLayers(workDir);
    await mkdir(rootfs, { mode: 0o755 });
    for (const [i, layer] of layers.entries()) {
      log(`layer ${i + 1}/${layers.length}: ${layer.blobSha256 ?? layer.diffSha256 ?? layer.file}`);
      const { ignoredXattrs } = await applyLayer(rootfs, layer, signal);
      if (ignoredXattrs > 0) log(`layer ${i + 1}: ignored extended attributes on ${ignoredXattrs} entries`);
    }
    return { format: isOci ? 'oci' : 'docker', layers: layers.length };
  } catch (err) {
    if (err instanceof TarFormatError) throw invalid(`malformed image tarball: ${err.message}`, {}, err);
    if (err instanceof SyntaxError) throw invalid(`malformed image JSON: ${err.message}`, {}, err);
    throw err;
  }
}

/** Layers of an OCI image layout: index.json → (nested index →) manifest → layers. */
async function ociLayers(workDir: string): Promise<LayerSource[]> {
  let descriptor = pickManifest(await readJson<{ manifests?: Descriptor[] }>(workDir, 'index.json'));
  for (let depth = 0; INDEX_MEDIA_TYPES.has(descriptor.mediaType ?? ''); depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw invalid('image index nested too deeply', {});
    descriptor = pickManifest(await readBlobJson(workDir, descriptor));
  }
  const manifest = await readBlobJson<{ config?: Descriptor; layers?: Descriptor[] }>(workDir, descriptor);
  if (!manifest.config || !Array.isArray(manifest.layers))
    throw invalid('image manifest lacks config or layers', {});
  const config = await readBlobJson<ImageConfig>(workDir, manifest.config);
  const diffIds = diffIdsOf(config, manifest.layers.length);
  return Promise.all(
    manifest.layers.map(async (layer, i) => ({
      file: await resolveInRoot(workDir, entryComponents(blobPath(layer.digest)), true),
      blobSha256: sha256Hex(layer.digest),
      diffSha256: diffIds[i],
    })),
  );
}

/** Layers of a legacy `docker save` tarball: manifest.json → Config + Layers paths. */
async function dockerLayers(workDir: string): Promise<LayerSource[]> {
  if (!(await exists(workDir, 'manifest.json'))) {
    throw invalid('not an OCI image layout or docker save tarball (no oci-layout, no manifest.json)', {});
  }
  const manifests = await readJson<Array<{ Config?: string; Layers?: string[] }>>(workDir, 'manifest.json');
  const manifest = Array.isArray(manifests) ? manifests[0] : undefined;
  if (!manifest?.Config || !Array.isArray(manifest.Layers))
    throw invalid('manifest.json lacks Config or Layers', {});
  const configBytes = await readInside(workDir, manifest.Config);
  // The config's file name is its digest (`<hex>.json`, or `blobs/sha256/<hex>` since Docker 25).
  const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(manifest.Config)?.[1];
  if (named) verifyDigest(manifest.Config, named, createHash('sha256').update(configBytes).digest('hex'));
  const diffIds = diffIdsOf(JSON.parse(configBytes.toString('utf8')) as ImageConfig, manifest.Layers.length);
  return Promise.all(
    manifest.Layers.map(async (file, i) => {
      const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(file)?.[1];
      const hostPath = await resolveInRoot(workDir, entryComponents(file), true);
      return { file: hostPath, diffSha256: diffIds[i], ...(blob ? { blobSha256: blob } : {}) };
    }),
  );
}

interface ImageConfig {
  rootfs?: { diff_ids?: string[] };
}

function diffIdsOf(config: ImageConfig, layerCount: number): Array<string | undefined> {
  const ids = config.rootfs?.diff_ids;
  if (!Array.isArray(ids)) return [];
  if (ids.length !== layerCount) throw invalid('config diff_ids do not match the layers', {});
  return ids.map((id) => sha256Hex(id));
}

function pickManifest(index: { manifests?: Descriptor[] }): Descriptor {
  const manifests = Array.isArray(index?.manifests) ? index.manifests : [];
  const amd64 = manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64');
  const chosen =
    amd64 ?? (manifests.length === 1 || !manifests.some((m) => m.platform) ? manifests[0] : undefined);
  if (!chosen) throw invalid('image index has no linux/amd64 manifest', {});
  return chosen;
}

/** Apply one layer: check its digests and entries, delete what its whiteouts hide, write it. */
async function applyLayer(
  rootfs: string,
  layer: LayerSource,
  signal?: AbortSignal,
): Promise<{ ignoredXattrs: number }> {
  if (!(await lstat(layer.file).catch(() => undefined))?.isFile()) {
    throw invalid('image tarball lacks a layer', { layer: layer.blobSha256 ?? layer.file });
  }
  if (layer.blobSha256) verifyDigest(layer.file, layer.blobSha256, await sha256File(layer.file));
  // First pass: validate every entry name and collect whiteouts, hashing the uncompressed tar.
  const diffHash = createHash('sha256');
  const whiteouts: Whiteouts = { deleted: [], opaque: [] };
  let ignoredXattrs = 0;
  const tapped = hashing(await openLayer(layer.file), diffHash);
  for await (const entry of readTar(tapped)) {
    signal?.throwIfAborted();
    entryComponents(entry.name);
    if (entry.type === 'hardlink') entryComponents(entry.linkName);
    collectWhiteout(entry, whiteouts);
    // File capabilities are restored (see writeEntry); other extended attributes are not.
    if (Object.keys(entry.xattrs).some((name) => name !== CAPABILITY_XATTR)) ignoredXattrs += 1;
  }
  for await (const _ of tapped) {
    // the end-of-archive padding is part of the diff id too
  }
  if (layer.diffSha256) verifyDigest(layer.file, layer.diffSha256, diffHash.digest('hex'));
  await applyWhiteouts(rootfs, whiteouts);
  await applyTar(rootfs, await openLayer(layer.file), signal);
  return { ignoredXattrs };
}

/** Write every entry of a tar stream into `root`, safely. */
async function applyTar(root: string, source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
  const dirTimes: DirectoryTimes = [];
  for await (const entry of readTar(source)) {
    signal?.throwIfAborted();
    await writeEntry(root, entry, dirTimes);
  }
  await applyDirectoryTimes(dirTimes);
}

/** A layer file's uncompressed tar stream: gzip and zstd are detected by their magic bytes. */
async function openLayer(file: string): Promise<Readable> {
  const magic = Buffer.alloc(6);
  const handle = await open(file, 'r');
  try {
    await handle.read(magic, 0, magic.length, 0);
  } finally {
    await handle.close();
  }
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    const raw = createReadStream(file);
    const gunzip = createGunzip();
    raw.on('error', (err) => gunzip.destroy(err));
    return raw.pipe(gunzip);
  }
  if (magic.readUInt32LE(0) === 0xfd2fb528) {
    const zstd = spawn('zstd', ['-dc', '--', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    zstd.on('error', (err) => zstd.stdout.destroy(err));
    return zstd.stdout;
  }
  if (
    magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ||
    magic.subarray(0, 3).toString() === 'BZh'
  ) {
    throw invalid('unsupported layer compression (xz or bzip2)', { layer: file });
  }
  return createReadStream(file);
}

async function* hashing(
  source: AsyncIterable<Buffer>,
  hash: ReturnType<typeof createHash>,
): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}

async function readBlobJson<T>(workDir: string, descriptor: Descriptor): Promise<T> {
  const file = blobPath(descriptor.digest);
  const bytes = await readInside(workDir, file);
  verifyDigest(file, sha256Hex(descriptor.digest), createHash('sha256').update(bytes).digest('hex'));
  if (descriptor.size !== undefined && descriptor.size !== bytes.length) {
    throw invalid(`blob size mismatch: ${file}`, {
      blob: file,
      expected: descriptor.size,
      actual: bytes.length,
    });
  }
  return JSON.parse(bytes.toString('utf8')) as T;
}

async function readJson<T>(workDir: string, file: string): Promise<T> {
  return JSON.parse((await readInside(workDir, file)).toString('utf8')) as T;
}

/** A file of the unpacked image, resolved inside it (the image's own symlinks cannot lead out). */
async function readInside(workDir: string, file: string): Promise<Buffer> {
  const hostPath = await resolveInRoot(workDir, entryComponents(file), true);
  return readFile(hostPath).catch((err: unknown) => {
    throw invalid(`image tarball lacks ${file}`, { file }, err);
  });
}

async function exists(workDir: string, file: string): Promise<boolean> {
  const hostPath = await resolveInRoot(workDir, entryComponents(file), true);
  return (await lstat(hostPath).catch(() => undefined))?.isFile() ?? false;
}

function blobPath(digest: string): string {
  return `blobs/sha256/${sha256Hex(digest)}`;
}

/** The hex of a `sha256:<hex>` digest; TEMPLATE_INVALID for any other algorithm or shape. */
function sha256Hex(digest: unknown): string {
  const hex = typeof digest === 'string' ? /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1] : undefined;
  if (!hex) throw invalid(`unsupported digest: ${String(digest)}`, { digest });
  return hex;
}

function verifyDigest(file: string, expected: string, actual: string): void {
  if (expected !== actual) {
    throw invalid(`digest mismatch for ${file}`, {
      file,
      expected: `sha256:${expected}`,
      actual: `sha256:${actual}`,
    });
  }
}

function invalid(message: string, details: Record<string, unknown>, cause?: unknown): RuntimeError {
  return new RuntimeError('TEMPLATE_INVALID', message, details, cause === undefined ? undefined : { cause });
}
