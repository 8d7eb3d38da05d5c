import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError } from '../../errors.js';
import type { CgroupDriver } from './interface.js';
import { createCgroupV1Driver, V1_CONTROLLERS } from './v1.js';
import { createCgroupV2Driver } from './v2.js';

export type { CgroupDriver, CgroupLimits, CgroupUsage, SandboxCgroup } from './interface.js';

/**
 * Pick the cgroup backend the host offers: pure v2 when /sys/fs/cgroup is the unified hierarchy,
 * otherwise v1 (legacy or hybrid) with every controller the sandbox limits need.
 */
export function detectCgroupDriver(root = '/sys/fs/cgroup'): CgroupDriver {
  if (existsSync(join(root, 'cgroup.controllers'))) return createCgroupV2Driver(root);
  const missing = V1_CONTROLLERS.filter((c) => !existsSync(join(root, c, 'cgroup.procs')));
  if (missing.length > 0) {
    throw new RuntimeError(
      'PREREQUISITE_MISSING',
      `cgroup v1 controllers missing at ${root}: ${missing.join(', ')} (mount them, or boot with the unified cgroup v2 hierarchy)`,
      { missing },
    );
  }
  return createCgroupV1Driver(root);
}
