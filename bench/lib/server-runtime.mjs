// The sandbox runtime opened exactly as the Corral server opens it, for benchmarks that drive
// it directly (baselines beside the HTTP figures, and sweeping what a stopped server left).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

async function serverModule(root, path) {
  const file = join(root, 'packages/server/dist', path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run 'npm run build' first`);
  return import(pathToFileURL(file).href);
}

/**
 * Opens the runtime with the server's own openSandboxEngine (same driver, network slot pool,
 * disk pre-warming) on `dataDir` and network `net` ({ bridge, subnet, table }), and returns it
 * with `spec(id)`: what the server's create hands the runtime for an empty POST /v1/sandboxes.
 */
export async function openServerRuntime({ root, dataDir, templateDir, net }) {
  const { openSandboxEngine } = await serverModule(root, 'sandbox-runtime.js');
  const { DEFAULT_RESOURCES } = await serverModule(root, 'services/sandboxes/spec.js');
  const { runtimeResources } = await serverModule(root, 'services/sandboxes/service.js');
  const { runtime } = openSandboxEngine({
    isolation: 'local',
    dataDir,
    templateDir,
    networkBridge: net.bridge,
    networkSubnet: net.subnet,
    networkTable: net.table,
  });
  const resources = runtimeResources(DEFAULT_RESOURCES);
  const spec = (id) => ({
    id,
    template: 'base',
    resources: { ...resources },
    env: {},
    network: { mode: 'internet' },
    metadata: {},
  });
  return { runtime, spec };
}
