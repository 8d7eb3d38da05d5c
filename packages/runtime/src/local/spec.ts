import { RuntimeError } from '../errors.js';
import type { SandboxInfo, SandboxSpec } from '../interface.js';
import { SANDBOX_ID_PATTERN } from '../shared/ids.js';
import type { CgroupLimits } from './cgroups/index.js';
import type { SandboxRecord } from './state.js';

const CPU_PERIOD_US = 100_000;

/** Reject a spec the driver cannot honour, with INVALID_ARGUMENT. */
export function validateSpec(spec: SandboxSpec): void {
  if (!SANDBOX_ID_PATTERN.test(spec.id))
    throw new RuntimeError('INVALID_ARGUMENT', `bad sandbox id: ${spec.id}`);
  const r = spec.resources;
  const ok =
    r &&
    r.cpu > 0 &&
    Number.isInteger(r.memoryMb) &&
    r.memoryMb >= 16 &&
    Number.isInteger(r.diskMb) &&
    r.diskMb >= 0 &&
    Number.isInteger(r.pids) &&
    r.pids >= 8;
  if (!ok)
    throw new RuntimeError('INVALID_ARGUMENT', 'resources need cpu > 0, memoryMb ≥ 16, diskMb ≥ 0, pids ≥ 8');
  if (spec.hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(spec.hostname)) {
    throw new RuntimeError('INVALID_ARGUMENT', `bad hostname: ${spec.hostname}`);
  }
}

/** The sandbox's hostname: the spec's, else its id made hostname-safe. */
export function hostnameOf(spec: SandboxSpec): string {
  return spec.hostname ?? spec.id.replace(/_/g, '-').slice(0, 63);
}

/** Cgroup limits for the spec's resources (cpu cores → CFS quota per 100 ms period). */
export function limitsOf(spec: SandboxSpec): CgroupLimits {
  return {
    memoryBytes: spec.resources.memoryMb * 1024 * 1024,
    cpuPeriodUs: CPU_PERIOD_US,
    cpuQuotaUs: Math.max(1000, Math.round(spec.resources.cpu * CPU_PERIOD_US)),
    pids: spec.resources.pids,
  };
}

/** The public view of a record. */
export function toInfo(record: SandboxRecord): SandboxInfo {
  const { spec } = record;
  const info: SandboxInfo = {
    id: spec.id,
    state: record.state,
    isolation: 'local',
    template: spec.template,
    resources: { ...spec.resources },
    network: structuredClone(spec.network),
    metadata: { ...spec.metadata },
    createdAt: record.createdAt,
  };
  if (record.error) info.error = record.error;
  return info;
}
