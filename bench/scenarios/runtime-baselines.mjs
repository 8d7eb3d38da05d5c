// Baselines beside Corral: bwrap, runc and runsc (gVisor, ptrace) over the same base rootfs.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { percentileRows, runCommand as run, sample, unavailable } from './runtime-measure.mjs';

/**
 * Every baseline row. `rootfs` is the base template's tree, `tmp` a scratch dir this function
 * may fill; `n` samples per figure. Containers are deleted even when a step fails.
 */
export async function baselineRows({ rootfs, tmp, n, log }) {
  const rows = [];
  const attempt = async (metric, work) => {
    try {
      rows.push(...(await work()));
    } catch (err) {
      log(`baseline ${metric} failed: ${err.message}`);
      rows.push(unavailable(metric, err));
    }
  };
  await attempt('bwrap --unshare-all /bin/true', async () => {
    const args = ['--unshare-all', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true'];
    return percentileRows('bwrap --unshare-all /bin/true', await sample(n, () => run('bwrap', args)));
  });
  const oneShot = await makeBundle(join(tmp, 'bundle-true'), rootfs, ['/bin/true']);
  const idle = await makeBundle(join(tmp, 'bundle-sleep'), rootfs, ['/bin/sleep', 'infinity']);
  const ids = { next: 0 };
  const id = (prefix) => `${prefix}-${process.pid}-${ids.next++}`;

  for (const engine of runtimes(tmp)) {
    await attempt(`${engine.label} run /bin/true`, async () => {
      const samples = await sample(n, () => engine.cli(['run', '--bundle', oneShot, id('crbt')]));
      return percentileRows(`${engine.label} run /bin/true (one-shot)`, samples);
    });
    await attempt(`${engine.label} run -d + exec`, async () => {
      const created = [];
      try {
        const runDetached = async () => {
          const name = id('crbd');
          created.push(name);
          // The detached container keeps inherited pipes open: give it none.
          await engine.cli(['run', '--detach', '--bundle', idle, name], { stdio: 'ignore' });
        };
        const runSamples = await sample(Math.min(n, 10), runDetached, 1);
        const target = created[created.length - 1];
        const execSamples = await sample(n, () => engine.cli(['exec', target, '/bin/true']));
        return [
          ...percentileRows(`${engine.label} run -d (sleep)`, runSamples),
          ...percentileRows(`${engine.label} exec /bin/true`, execSamples),
        ];
      } finally {
        for (const name of created) await engine.cli(['delete', '--force', name]).catch(() => undefined);
      }
    });
  }
  await attempt('runsc do /bin/true', async () => {
    const args = ['--root', join(tmp, 'runsc-do'), '--platform=ptrace', '--network=none', 'do', '/bin/true'];
    return percentileRows('runsc --platform=ptrace do /bin/true', await sample(n, () => run('runsc', args)));
  });
  return rows;
}

/** runc and runsc (ptrace, no network), each with its own state root under `tmp`. */
function runtimes(tmp) {
  const runsc = ['--root', join(tmp, 'runsc-state'), '--platform=ptrace', '--network=none'];
  return [
    { label: 'runc', cli: (args, opts) => run('runc', ['--root', join(tmp, 'runc-state'), ...args], opts) },
    { label: 'runsc (ptrace)', cli: (args, opts) => run('runsc', [...runsc, ...args], opts) },
  ];
}

/** An OCI bundle from `runc spec` with a read-only `rootfs` and the given process. */
async function makeBundle(dir, rootfs, args) {
  await mkdir(dir, { recursive: true });
  await run('runc', ['spec', '--bundle', dir]);
  const path = join(dir, 'config.json');
  const config = JSON.parse(await readFile(path, 'utf8'));
  config.root = { path: rootfs, readonly: true };
  config.process.args = args;
  config.process.terminal = false;
  await writeFile(path, JSON.stringify(config, null, 2));
  return dir;
}
