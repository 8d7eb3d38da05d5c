// The sandbox runtime opened exactly as the Corral server opens it, for benchmarks that drive
// it directly (baselines beside the HTTP figures, and sweeping what a stopped server left).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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

/** The netns prefix the server derives from its nft table (packages/server/src/sandbox-runtime.ts). */
export function netnsPrefix(table) {
  return `crl${createHash('sha256').update(table).digest('hex').slice(0, 4)}-`;
}

/** Removes a server network's host objects: namespaces with its prefix, its nft tables, its bridge. */
export function removeServerNetwork(net) {
  const quiet = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  const prefix = netnsPrefix(net.table);
  for (const line of quiet('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith(prefix)) quiet('ip', ['netns', 'del', name]);
  }
  quiet('nft', ['delete', 'table', 'inet', net.table]);
  quiet('nft', ['delete', 'table', 'bridge', net.table]);
  quiet('ip', ['link', 'del', net.bridge]);
}

/**
 * Destroys, through the runtime in-process, whatever sandboxes a stopped server left in
 * `dataDir` on network `net` (a failed run must not leave sandboxes running on the machine).
 */
export async function sweepServerRuntime({ root, dataDir, templateDir, net, log }) {
  const { runtime } = await openServerRuntime({ root, dataDir, templateDir, net });
  try {
    const left = await runtime.list();
    if (left.length > 0) log(`destroying ${left.length} sandboxes the server left behind`);
    for (const sandbox of left) {
      await runtime.destroy(sandbox.id).catch((err) => log(`sweep ${sandbox.id}: ${err.message}`));
    }
  } finally {
    await runtime.close().catch(() => undefined);
  }
}
