/**
 * The plan table: the one place that says what each plan allows and costs. The rate limiter,
 * the sandbox service (caps) and `GET /v1/pricing` all read it.
 */
export const PLAN_IDS = ['free', 'pro', 'team'] as const;

/** A plan's id. */
export type PlanId = (typeof PLAN_IDS)[number];

/** What one plan allows and costs. Money is a decimal string in US dollars. */
export interface Plan {
  readonly id: PlanId;
  readonly name: string;
  /** Monthly price, e.g. "20.00". */
  readonly priceUsdPerMonth: string;
  /** Usage price of one vCPU-hour beyond the included amount. */
  readonly priceUsdPerCpuHour: string;
  /** API requests per minute per API key (or dashboard session), by the plan of its workspace. */
  readonly requestsPerMinute: number;
  /** Sandboxes running at the same time per workspace. */
  readonly maxConcurrentSandboxes: number;
  /** Largest single sandbox. */
  readonly maxCpu: number;
  readonly maxMemoryMb: number;
  readonly maxDiskMb: number;
  /** Longest `timeout_seconds` a sandbox may ask for. */
  readonly maxTimeoutSeconds: number;
  readonly maxSnapshots: number;
  readonly maxMembers: number;
}

/** The plans, by id. */
export const PLANS: Readonly<Record<PlanId, Plan>> = Object.freeze({
  free: {
    id: 'free',
    name: 'Free',
    priceUsdPerMonth: '0.00',
    priceUsdPerCpuHour: '0.05',
    requestsPerMinute: 60,
    maxConcurrentSandboxes: 2,
    maxCpu: 1,
    maxMemoryMb: 1024,
    maxDiskMb: 2048,
    maxTimeoutSeconds: 3600,
    maxSnapshots: 5,
    maxMembers: 1,
  },
  pro: {
    id: 'pro',
    name: 'Pro',
    priceUsdPerMonth: '20.00',
    priceUsdPerCpuHour: '0.04',
    requestsPerMinute: 300,
    maxConcurrentSandboxes: 20,
    maxCpu: 4,
    maxMemoryMb: 8192,
    maxDiskMb: 20_480,
    maxTimeoutSeconds: 86_400,
    maxSnapshots: 100,
    maxMembers: 5,
  },
  team: {
    id: 'team',
    name: 'Team',
    priceUsdPerMonth: '100.00',
    priceUsdPerCpuHour: '0.03',
    requestsPerMinute: 1000,
    maxConcurrentSandboxes: 100,
    maxCpu: 8,
    maxMemoryMb: 16_384,
    maxDiskMb: 51_200,
    maxTimeoutSeconds: 86_400,
    maxSnapshots: 1000,
    maxMembers: 100,
  },
});

/** True when `id` names a plan. */
export function isPlanId(id: unknown): id is PlanId {
  return typeof id === 'string' && (PLAN_IDS as readonly string[]).includes(id);
}

/** The plan for `id`; unknown ids (e.g. a plan removed since) fall back to free. */
export function planFor(id: string): Plan {
  return isPlanId(id) ? PLANS[id] : PLANS.free;
}
