import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../src/interface.js';
import { createRuntime } from '../src/runtime.js';
import { createTemplateStore } from '../src/templates/index.js';
import { TEMPLATE_DIR } from './local-fixture.js';
import { shellOk, waitFor } from './shared/sandbox-shell.js';

describe('local driver: the control plane is SIGKILLed', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'corral-crash-'));
  let rt: Runtime | undefined;
  afterAll(async () => {
    if (rt) {
      for (const s of await rt.list()) await rt.destroy(s.id);
      await rt.close();
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('loses no sandbox, background process or tracked process', async () => {
    // A separate vitest process plays the control plane, so it can die without cleanup.
    const child = spawn(
      'npx',
      ['vitest', 'run', '--project', 'runtime', 'packages/runtime/test/local-crash.child.test.ts'],
      { env: { ...process.env, CORRAL_CRASH_STATE: stateDir }, detached: true, stdio: 'ignore' },
    );
    const ready = join(stateDir, 'ready.json');
    await waitFor(
      'the child control plane to be ready',
      async () => (existsSync(ready) ? true : undefined),
      180_000,
    );
    process.kill(-(child.pid as number), 'SIGKILL');
    await waitFor('the child to be gone', async () =>
      child.exitCode !== null || child.signalCode ? true : undefined,
    );
    const { id, pid } = JSON.parse(readFileSync(ready, 'utf8')) as { id: string; pid: number };

    rt = createRuntime({
      isolation: 'local',
      stateDir,
      templates: createTemplateStore({ dir: TEMPLATE_DIR }),
    });
    expect((await rt.list()).map((s) => [s.id, s.state])).toEqual([[id, 'running']]);
    expect(await shellOk(rt, id, 'cat ~/f; pgrep -fx "sleep 4545" >/dev/null && echo bg-alive')).toBe(
      'before-crash\nbg-alive\n',
    );
    expect((await rt.processes(id)).map((p) => p.pid)).toContain(pid);
    await rt.signal(id, pid, 'SIGKILL');
    await waitFor('the tracked process to be gone', async () =>
      (await rt!.processes(id)).some((p) => p.pid === pid) ? undefined : true,
    );
  }, 300_000);
});
