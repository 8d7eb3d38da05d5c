import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import type { Runtime } from '../../src/interface.js';
import { describeConnect } from './connect.js';
import { baseSpec, type ConformanceContext, type MakeRuntime } from './context.js';
import { describeExec } from './exec.js';
import { describeFiles } from './files.js';
import { describeLifecycle } from './lifecycle.js';
import { describeLimits } from './limits.js';
import { describePorts } from './ports.js';
import { describePty } from './pty.js';
import { describeResources } from './resources.js';
import { describeRestart } from './restart.js';
import { describeSnapshots } from './snapshots.js';

export type { ConformanceContext, MakeRuntime } from './context.js';

/**
 * The sections every driver passes unchanged. Register a new section here: a function taking the
 * context (sections written against (getRuntime, getSandboxId) are adapted inline).
 */
const SECTIONS: ((ctx: ConformanceContext) => void)[] = [
  describeLifecycle,
  describeExec,
  describePty,
  (ctx) => describeFiles(ctx.runtime, ctx.sharedSandbox),
  (ctx) => describePorts(ctx.runtime, ctx.sharedSandbox),
  describeConnect,
  describeLimits,
  describeResources,
  describeSnapshots,
  // Last: it closes the first runtime instance.
  describeRestart,
];

/** Run the Runtime conformance suite against `makeRuntime` (root and the base template required). */
export function describeRuntimeConformance(name: string, makeRuntime: MakeRuntime): void {
  describe(`${name} runtime conformance`, () => {
    let stateDir = '';
    let runtime: Runtime | undefined;
    const runtimes: Runtime[] = [];
    const created = new Set<string>();
    const shared = baseSpec('shared');

    const ctx: ConformanceContext = {
      runtime: () => {
        if (!runtime) throw new Error('runtime not ready');
        return runtime;
      },
      stateDir: () => stateDir,
      async restart() {
        await runtime?.close();
        runtime = await makeRuntime(stateDir);
        runtimes.push(runtime);
        return runtime;
      },
      spec(specName, overrides) {
        const spec = baseSpec(specName, overrides);
        created.add(spec.id);
        return spec;
      },
      sharedSandbox: () => shared.id,
    };

    beforeAll(async () => {
      stateDir = mkdtempSync(join(tmpdir(), `corral-conf-${name}-`));
      runtime = await makeRuntime(stateDir);
      runtimes.push(runtime);
      await runtime.create(shared);
      created.add(shared.id);
    });

    afterAll(async () => {
      const rt = runtime;
      if (rt) {
        for (const id of created) await rt.destroy(id).catch(() => undefined);
      }
      for (const r of runtimes) await r.close().catch(() => undefined);
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    });

    for (const section of SECTIONS) section(ctx);
  });
}
