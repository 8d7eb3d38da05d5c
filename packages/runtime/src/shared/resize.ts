import { RuntimeError } from '../errors.js';
import type { Resources, SandboxSpec } from '../interface.js';

/**
 * The spec with new resources, checked by the driver's own `validate` (INVALID_ARGUMENT) and
 * for the one thing no driver can change after create: the disk size (UNSUPPORTED).
 */
export function resizedSpec(
  spec: SandboxSpec,
  resources: Resources,
  validate: (spec: SandboxSpec) => void,
): SandboxSpec {
  const next = { ...spec, resources: { ...resources } };
  validate(next);
  if (resources.diskMb !== spec.resources.diskMb) {
    throw new RuntimeError(
      'UNSUPPORTED',
      `the disk size is fixed at create (${spec.resources.diskMb} MiB); it cannot change to ${resources.diskMb} MiB`,
      { diskMb: spec.resources.diskMb },
    );
  }
  return next;
}

/**
 * Applies new limits to a live sandbox with `apply`; if that fails, puts the old ones back with
 * `rollback` and throws: INVALID_ARGUMENT when the kernel refused a memory limit below what the
 * sandbox uses now (EBUSY after reclaim, cgroup v1), INTERNAL otherwise.
 */
export async function applyLiveResources(
  spec: SandboxSpec,
  memoryMb: number,
  apply: () => Promise<void>,
  rollback: () => Promise<void>,
): Promise<void> {
  try {
    await apply();
  } catch (err) {
    await rollback().catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EBUSY') {
      throw new RuntimeError(
        'INVALID_ARGUMENT',
        `sandbox ${spec.id} uses more than ${memoryMb} MiB of memory now; free some or choose a higher limit`,
        { memoryMb },
      );
    }
    throw new RuntimeError(
      'INTERNAL',
      `cannot apply resources: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
}
