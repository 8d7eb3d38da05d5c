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
