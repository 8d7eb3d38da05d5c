import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { createRuntime } from '../src/runtime.js';
import { createTemplateStore } from '../src/templates/index.js';
import { TEMPLATE_DIR } from './local-fixture.js';
import { shellOk, waitFor } from './shared/sandbox-shell.js';

// The control plane that local-crash.test.ts SIGKILLs: only runs when that test spawns it.
const stateDir = process.env.CORRAL_CRASH_STATE;

describe('crash child (spawned by local-crash.test.ts)', () => {
  it('creates a sandbox, starts work, reports ready and waits to be killed', async () => {
    if (!stateDir) throw new Error('CORRAL_CRASH_STATE is not set: this file is run by local-crash.test.ts');
    const dir = stateDir;
    const rt = createRuntime({
      isolation: 'local',
      stateDir: dir,
      templates: createTemplateStore({ dir: TEMPLATE_DIR }),
    });
    const id = 'crash-1';
    await rt.create({
      id,
      template: 'base',
      resources: { cpu: 1, memoryMb: 256, diskMb: 128, pids: 128 },
      env: {},
      network: { mode: 'none' },
      metadata: {},
    });
    await shellOk(rt, id, 'echo before-crash > ~/f; nohup sleep 4545 >/dev/null 2>&1 &');
    const tracked = await rt.exec(id, { command: 'sleep', args: ['4444'] });
    tracked.stdin.end();
    // processes.json is written in the background: wait until it holds the tracked process.
    await waitFor('processes.json', async () =>
      readFileSync(join(dir, 'sandboxes', id, 'processes.json'), 'utf8').includes(`"pid": ${tracked.pid}`)
        ? true
        : undefined,
    );
    writeFileSync(join(dir, 'ready.json'), JSON.stringify({ id, pid: tracked.pid }));
    await new Promise(() => undefined);
  }, 600_000);
});
