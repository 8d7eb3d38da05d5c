import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../errors.js';
import type { SandboxSpec } from '../interface.js';
import type { TemplateStore } from '../templates/interface.js';
import type { SandboxPaths, SandboxRecord } from './state.js';

/**
 * Make the sandbox's directory (SANDBOX_EXISTS when it is there already) and resolve its
 * template; returns the new, unsaved 'stopped' record. A failed resolve removes the directory.
 */
export async function makeSandboxRecord(
  stateDir: string,
  templates: TemplateStore,
  spec: SandboxSpec,
  paths: SandboxPaths,
): Promise<SandboxRecord> {
  await mkdir(join(stateDir, 'sandboxes'), { recursive: true, mode: 0o700 });
  try {
    await mkdir(paths.dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new RuntimeError('SANDBOX_EXISTS', `sandbox ${spec.id} already exists`);
    }
    throw err;
  }
  const template = await templates.resolve(spec.template).catch(async (err) => {
    await rm(paths.dir, { recursive: true, force: true });
    throw err;
  });
  return {
    version: 1,
    spec: structuredClone(spec),
    state: 'stopped',
    createdAt: new Date().toISOString(),
    templateId: template.id,
    lowerDir: template.rootfs,
    diskId: null,
    init: null,
    network: null,
  };
}
