import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createNetworkManager,
  createRuntime,
  createTemplateStore,
  type Runtime,
  type TemplateStore,
} from '@corral/runtime';
import { removeTestNetwork } from '../../../runtime/test/local-fixture.js';

/** The machine-wide template cache the runtime suites build into (built once, reused). */
export const TEST_TEMPLATE_DIR = process.env.CORRAL_TEMPLATE_DIR ?? '/var/cache/corral/templates';

/** Host-side network names for one test engine (distinct per claimed slot). */
export interface TestNetworkNames {
  bridge: string;
  tableName: string;
  netnsPrefix: string;
  vethPrefix: string;
  subnet: string;
}

/** A runtime for a server suite, with its template store; `close()` destroys what it made. */
export interface TestEngine {
  runtime: Runtime;
  templates: TemplateStore;
  stateDir: string;
  network: TestNetworkNames | null;
  close(): Promise<void>;
}

const CLAIMS = '/run/corral-server-test-nets';
const SLOTS = 36;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims a network slot (0..35) machine-wide with an atomic mkdir, taking over slots whose
 * owner process is gone. Slot n uses subnet 100.(64+n).0.0/16 and names `cst<n>…`, apart from
 * the runtime suites' (100.110+) and a real server's (100.100) defaults.
 */
export function claimNetworkSlot(): { slot: number; names: TestNetworkNames; release(): void } {
  mkdirSync(CLAIMS, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    for (let slot = 0; slot < SLOTS; slot++) {
      const dir = join(CLAIMS, String(slot));
      try {
        mkdirSync(dir);
      } catch {
        let owner = 0;
        try {
          owner = Number(readFileSync(join(dir, 'pid'), 'utf8'));
        } catch {
          // being claimed right now, or crashed mid-claim: leave it this pass
        }
        if (attempt === 0 || !owner || alive(owner)) continue;
        rmSync(dir, { recursive: true, force: true });
        try {
          mkdirSync(dir);
        } catch {
          continue;
        }
      }
      writeFileSync(join(dir, 'pid'), String(process.pid));
      const names: TestNetworkNames = {
        bridge: `cst${slot}`,
        tableName: `corral_st${slot}`,
        netnsPrefix: `cst${slot}-`,
        vethPrefix: `s${slot.toString(36).padStart(2, '0')}`,
        subnet: `100.${64 + slot}.0.0/16`,
      };
      removeNetwork(names);
      return { slot, names, release: () => rmSync(dir, { recursive: true, force: true }) };
    }
  }
  throw new Error(`all ${SLOTS} server test network slots are taken`);
}

/** Removes a test network's bridge, nft tables and leftover namespaces (the runtime suites' own cleanup). */
export function removeNetwork(names: TestNetworkNames): void {
  removeTestNetwork(names);
}

/**
 * A local runtime in a temp state directory over the shared template cache. With
 * `network: true` sandboxes get real networking on a claimed test slot; without, each gets a
 * loopback-only namespace (faster, and enough for suites that do not test egress).
 */
export async function createTestEngine(options: { network?: boolean } = {}): Promise<TestEngine> {
  const stateDir = await mkdtemp(join(tmpdir(), 'corral-srv-rt-'));
  const templates = createTemplateStore({ dir: TEST_TEMPLATE_DIR });
  const claim = options.network ? claimNetworkSlot() : null;
  const runtime = createRuntime({
    isolation: 'local',
    stateDir,
    templates,
    ...(claim
      ? {
          network: createNetworkManager({ stateDir: join(stateDir, 'network'), ...claim.names, poolSize: 0 }),
        }
      : {}),
  });
  return {
    runtime,
    templates,
    stateDir,
    network: claim?.names ?? null,
    async close() {
      for (const sandbox of await runtime.list().catch(() => [])) {
        await runtime.destroy(sandbox.id).catch(() => undefined);
      }
      await runtime.close();
      if (claim) {
        removeNetwork(claim.names);
        claim.release();
      }
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
