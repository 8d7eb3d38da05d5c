import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Runtime } from '../src/interface.js';
import { createNetworkManager } from '../src/local/network/index.js';
import { createRuntime } from '../src/runtime.js';
import { createTemplateStore } from '../src/templates/index.js';

/** Template cache shared by every runtime test. */
export const TEMPLATE_DIR = '/var/cache/corral/templates';

// Network names private to this test process: other suites (and other people's runs of this one)
// on the same machine each get their own bridge, nft table, netns prefix and subnet.
const tag = (process.pid % 0xfff).toString(16).padStart(3, '0');
export const NET = {
  bridge: `crl${tag}`,
  tableName: `corral_lt_${tag}`,
  netnsPrefix: `crlt${tag}-`,
  vethPrefix: `l${tag}`,
  subnet: `100.${110 + (process.pid % 100)}.0.0/16`,
};

/** A local runtime over `stateDir` with a real network manager under `<stateDir>/network`. */
export function makeLocalRuntime(stateDir: string): Runtime {
  return createRuntime({
    isolation: 'local',
    stateDir,
    templates: createTemplateStore({ dir: TEMPLATE_DIR }),
    network: createNetworkManager({ stateDir: join(stateDir, 'network'), ...NET }),
  });
}

/** Remove a test network's host-side objects (bridge, nft tables, leftover netns); default: this fixture's. */
export function removeTestNetwork(
  names: { bridge: string; tableName: string; netnsPrefix: string } = NET,
): void {
  const quiet = (cmd: string, args: string[]) => {
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
    } catch {
      // absent
    }
  };
  const list = execFileSync('ip', ['netns', 'list'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith(names.netnsPrefix)) quiet('ip', ['netns', 'del', name]);
  }
  quiet('nft', ['delete', 'table', 'inet', names.tableName]);
  quiet('nft', ['delete', 'table', 'bridge', names.tableName]);
  quiet('ip', ['link', 'del', names.bridge]);
}
