import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  createNetworkManager,
  createRuntime,
  createTemplateStore,
  type Runtime,
  type TemplateStore,
} from '@corral/runtime';
import type { Config } from './config.js';
import { DEFAULT_RESOURCES } from './services/sandboxes/spec.js';

/** The runtime and the template store it resolves templates from. */
export interface SandboxEngine {
  runtime: Runtime;
  templates: TemplateStore;
}

/**
 * Opens the configured runtime: templates from `config.templateDir`, driver state under
 * `<data>/runtime`, and per-sandbox networking on `config.networkBridge`/`networkSubnet` with
 * two network slots kept ready (create claims one instead of building it). Host-side names
 * (netns, veths) derive from `config.networkTable`, so two servers on one machine with
 * different tables never touch each other's objects.
 */
export function openSandboxEngine(config: Config): SandboxEngine {
  const templates = createTemplateStore({ dir: config.templateDir });
  const stateDir = join(config.dataDir, 'runtime');
  const isDefault = config.networkTable === 'corral';
  const tag = createHash('sha256').update(config.networkTable).digest('hex').slice(0, 4);
  const network = createNetworkManager({
    stateDir: join(stateDir, 'network'),
    bridge: config.networkBridge,
    subnet: config.networkSubnet,
    tableName: config.networkTable,
    netnsPrefix: isDefault ? 'corral-' : `crl${tag}-`,
    vethPrefix: isDefault ? 'cr-' : `v${tag}`,
    poolSize: 2,
  });
  const runtime = createRuntime({
    isolation: config.isolation,
    stateDir,
    templates,
    network,
    prewarmDiskMb: [DEFAULT_RESOURCES.disk_mb],
  });
  return { runtime, templates };
}
