import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** What a test layer holds: files (with optional owner and mode), symlinks and directories. */
export interface LayerSpec {
  files?: Record<string, string | { content: string; uid?: number; gid?: number; mode?: number }>;
  symlinks?: Record<string, string>;
  dirs?: string[];
  gzip?: boolean;
  /** Tar only the named files and symlinks, without entries for their parent directories. */
  withoutDirectories?: boolean;
  /** File capabilities to set (setcap text by file), stored in the layer as pax xattrs. */
  capabilities?: Record<string, string>;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Write a layer's tree into a temp dir and tar it with GNU tar; returns the layer bytes and its diff id. */
export async function makeLayer(workDir: string, spec: LayerSpec): Promise<{ blob: Buffer; diffId: string }> {
  const tree = path.join(workDir, `tree-${Math.random().toString(16).slice(2)}`);
  await mkdir(tree, { recursive: true });
  for (const dir of spec.dirs ?? []) await mkdir(path.join(tree, dir), { recursive: true });
  for (const [name, value] of Object.entries(spec.files ?? {})) {
    const file = typeof value === 'string' ? { content: value } : value;
    const target = path.join(tree, name);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content);
    await chown(target, file.uid ?? 0, file.gid ?? 0);
    await chmod(target, file.mode ?? 0o644);
  }
  for (const [name, target] of Object.entries(spec.symlinks ?? {})) {
    await mkdir(path.dirname(path.join(tree, name)), { recursive: true });
    await symlink(target, path.join(tree, name));
  }
  for (const [name, caps] of Object.entries(spec.capabilities ?? {})) {
    await execFileAsync('setcap', [caps, path.join(tree, name)]);
  }
  const tarFile = `${tree}.tar`;
  const xattrs = spec.capabilities ? ['--xattrs', '--xattrs-include=security.capability'] : [];
  const members = spec.withoutDirectories
    ? ['--no-recursion', ...Object.keys(spec.files ?? {}), ...Object.keys(spec.symlinks ?? {})]
    : ['.'];
  await execFileAsync('tar', ['--numeric-owner', ...xattrs, '-C', tree, '-cf', tarFile, ...members]);
  const raw = await readFile(tarFile);
  if (!spec.gzip) return { blob: raw, diffId: `sha256:${sha256(raw)}` };
  await execFileAsync('gzip', ['-n', tarFile]);
  return { blob: await readFile(`${tarFile}.gz`), diffId: `sha256:${sha256(raw)}` };
}

/** A layer holding one entry named `../../<relative>` (GNU tar keeps it with -P). */
export async function makeEscapingLayer(
  workDir: string,
  relative: string,
): Promise<{ blob: Buffer; diffId: string }> {
  const tree = path.join(workDir, `evil-${Math.random().toString(16).slice(2)}`);
  await mkdir(path.dirname(path.join(tree, relative)), { recursive: true });
  await writeFile(path.join(tree, relative), 'evil\n');
  const tarFile = `${tree}.tar`;
  await execFileAsync('tar', ['-C', tree, '-P', '--transform=s,^,../../,', '-cf', tarFile, relative]);
  const blob = await readFile(tarFile);
  return { blob, diffId: `sha256:${sha256(blob)}` };
}

type Layer = { blob: Buffer; diffId: string; gzip?: boolean };

/**
 * An OCI image layout tarball whose index lists an arm64 decoy (with its own layer) before the
 * amd64 image. `corrupt` flips a byte of the first layer blob after its digest was taken; `dropFirstLayer` leaves that blob out.
 */
export async function makeOciImage(
  workDir: string,
  layers: Layer[],
  options: { corrupt?: boolean; dropFirstLayer?: boolean } = {},
) {
  const dir = path.join(workDir, `oci-${Math.random().toString(16).slice(2)}`);
  const blobs = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const putBlob = async (bytes: Buffer, mediaType: string) => {
    const hex = sha256(bytes);
    await writeFile(path.join(blobs, hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const image = async (imageLayers: Layer[]) => {
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: imageLayers.map((l) => l.diffId) },
      }),
    );
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: await putBlob(config, 'application/vnd.oci.image.config.v1+json'),
      layers: await Promise.all(
        imageLayers.map((l) =>
          putBlob(
            l.blob,
            l.gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar',
          ),
        ),
      ),
    };
    return putBlob(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  };
  const decoyLayer = await makeLayer(workDir, { files: { 'decoy.txt': 'arm64\n' } });
  const decoy = await image([decoyLayer]);
  const amd64 = await image(layers);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...decoy, platform: { os: 'linux', architecture: 'arm64' } },
      { ...amd64, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  if (options.corrupt && layers[0]) {
    const file = path.join(blobs, sha256(layers[0].blob));
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    await writeFile(file, bytes);
  }
  if (options.dropFirstLayer && layers[0]) await rm(path.join(blobs, sha256(layers[0].blob)));
  const tarFile = `${dir}.tar`;
  await execFileAsync('tar', ['-C', dir, '-cf', tarFile, 'oci-layout', 'index.json', 'blobs']);
  return tarFile;
}

/** A legacy `docker save` tarball: manifest.json, `<config hex>.json`, `<n>/layer.tar`. */
export async function makeDockerSaveImage(workDir: string, layers: Layer[]) {
  const dir = path.join(workDir, `docker-${Math.random().toString(16).slice(2)}`);
  await mkdir(dir, { recursive: true });
  const layerPaths: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const layerDir = `${String(i).padStart(64, 'a')}`;
    await mkdir(path.join(dir, layerDir));
    await writeFile(path.join(dir, layerDir, 'layer.tar'), layer.blob);
    await writeFile(path.join(dir, layerDir, 'VERSION'), '1.0');
    layerPaths.push(`${layerDir}/layer.tar`);
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configName = `${sha256(config)}.json`;
  await writeFile(path.join(dir, configName), config);
  await writeFile(
    path.join(dir, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: ['corral/test:latest'], Layers: layerPaths }]),
  );
  const tarFile = `${dir}.tar`;
  await execFileAsync('tar', ['-C', dir, '-cf', tarFile, '.']);
  return tarFile;
}
