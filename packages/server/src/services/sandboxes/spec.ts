import type { NetworkPolicy } from '@corral/runtime';
import { type Static, Type } from 'typebox';
import { apiError } from '../../errors.js';
import type { Plan } from '../../plans.js';
import { AGENT_TYPES, type AgentType, type ResourcesView } from './view.js';

/*
 * The shapes a sandbox is created and updated with (the single source of their types: routes
 * use these schemas, services use the Static types).
 */

export const DEFAULT_TIMEOUT_SECONDS = 3600;
export const MAX_TIMEOUT_SECONDS = 86_400;
export const DEFAULT_RESOURCES: ResourcesView = { cpu: 1, memory_mb: 512, disk_mb: 2048 };

export const EnvName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,254}$' });
/** Env values: up to 32 KiB each. */
export const EnvVars = Type.Record(
  Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,254}$' }),
  Type.String({ maxLength: 32_768 }),
  {
    maxProperties: 200,
    additionalProperties: false,
  },
);
export const Metadata = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9_.:/-]{1,64}$' }),
  Type.String({ maxLength: 512 }),
  {
    maxProperties: 50,
    additionalProperties: false,
  },
);
export const ResourcesInput = Type.Object(
  {
    cpu: Type.Optional(Type.Number({ minimum: 0.1, maximum: 64 })),
    memory_mb: Type.Optional(Type.Integer({ minimum: 64, maximum: 1_048_576 })),
    disk_mb: Type.Optional(Type.Integer({ minimum: 256, maximum: 1_048_576 })),
  },
  { additionalProperties: false },
);
export const NetworkInput = Type.Object(
  {
    mode: Type.Union([Type.Literal('internet'), Type.Literal('none'), Type.Literal('allowlist')]),
    allow: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9*.:/_-]+$' }), {
        maxItems: 256,
      }),
    ),
  },
  { additionalProperties: false },
);
/** Money in: a decimal string ("5.00") or a number; stored and shown as a decimal string. */
export const BudgetInput = Type.Union([
  Type.String({ pattern: '^\\d{1,9}(\\.\\d{1,6})?$' }),
  Type.Number({ minimum: 0, maximum: 999_999_999 }),
]);
export const SandboxName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]+$' });

export const CreateSandboxBody = Type.Object(
  {
    name: Type.Optional(SandboxName),
    workspace_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    template: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' })),
    type: Type.Optional(Type.Union([Type.Literal('opencode'), Type.Literal('openclaw')])),
    timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS })),
    idle_timeout_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_SECONDS })),
    resources: Type.Optional(ResourcesInput),
    env: Type.Optional(EnvVars),
    ports: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 65_535 }), { maxItems: 32, uniqueItems: true }),
    ),
    gui: Type.Optional(
      Type.Boolean({
        description:
          'Start a VNC desktop (Xvfb, openbox, x11vnc, noVNC on port 6080) served at vnc_url; default true with the gui template',
      }),
    ),
    metadata: Type.Optional(Metadata),
    budget_usd: Type.Optional(BudgetInput),
    network: Type.Optional(NetworkInput),
  },
  { additionalProperties: false },
);
export type CreateSandboxInput = Static<typeof CreateSandboxBody>;

/** A create request with every default applied and every plan cap checked. */
export interface SandboxSpecInput {
  name: string | undefined;
  template: string;
  type: AgentType | null;
  timeoutSeconds: number;
  idleTimeoutSeconds: number | null;
  resources: ResourcesView;
  env: Record<string, string>;
  ports: number[];
  gui: boolean;
  metadata: Record<string, string>;
  budgetUsd: string | null;
  network: NetworkPolicy;
}

/** A decimal string for a budget ("5" → "5.00"). */
export function normalizeBudget(value: string | number): string {
  const text = typeof value === 'number' ? value.toFixed(6) : value;
  const [whole = '0', fraction = ''] = text.split('.');
  const trimmed = fraction.replace(/0+$/, '');
  return `${BigInt(whole).toString()}.${trimmed.padEnd(2, '0')}`;
}

/** The runtime's network policy for the API's; `allow` only with (and required by) `allowlist`. */
export function normalizeNetwork(input: Static<typeof NetworkInput> | undefined): NetworkPolicy {
  if (!input) return { mode: 'internet' };
  if (input.mode === 'allowlist') {
    if (!input.allow || input.allow.length === 0) {
      throw apiError('VALIDATION_ERROR', {
        fields: [{ path: '/network/allow', message: 'is required for mode allowlist' }],
      });
    }
    return { mode: 'allowlist', allow: input.allow };
  }
  if (input.allow !== undefined) {
    throw apiError('VALIDATION_ERROR', {
      fields: [{ path: '/network/allow', message: 'is only allowed with mode allowlist' }],
    });
  }
  return { mode: input.mode };
}

/** Throws 403 PLAN_LIMIT naming the cap when `value` exceeds it. */
export function checkCap(plan: Plan, limit: string, value: number, max: number): void {
  if (value > max) {
    throw apiError(
      'PLAN_LIMIT',
      { limit, value, max, plan: plan.id },
      `Your plan (${plan.name}) allows ${limit} up to ${max}; asked for ${value}`,
    );
  }
}

/** Resources with defaults (never above the plan's caps), checked against the plan. */
export function normalizeResources(
  input: Static<typeof ResourcesInput> | undefined,
  plan: Plan,
): ResourcesView {
  const resources: ResourcesView = {
    cpu: input?.cpu ?? Math.min(DEFAULT_RESOURCES.cpu, plan.maxCpu),
    memory_mb: input?.memory_mb ?? Math.min(DEFAULT_RESOURCES.memory_mb, plan.maxMemoryMb),
    disk_mb: input?.disk_mb ?? Math.min(DEFAULT_RESOURCES.disk_mb, plan.maxDiskMb),
  };
  checkCap(plan, 'max_cpu', resources.cpu, plan.maxCpu);
  checkCap(plan, 'max_memory_mb', resources.memory_mb, plan.maxMemoryMb);
  checkCap(plan, 'max_disk_mb', resources.disk_mb, plan.maxDiskMb);
  return resources;
}

/** Applies defaults and checks plan caps (403 PLAN_LIMIT) for a create request. */
export function normalizeCreate(input: CreateSandboxInput, plan: Plan): SandboxSpecInput {
  const timeoutSeconds = input.timeout_seconds ?? Math.min(DEFAULT_TIMEOUT_SECONDS, plan.maxTimeoutSeconds);
  checkCap(plan, 'max_timeout_seconds', timeoutSeconds, plan.maxTimeoutSeconds);
  const type = (input.type as AgentType | undefined) ?? null;
  const ports = [...(input.ports ?? [])];
  if (type && !ports.includes(AGENT_TYPES[type].port)) ports.push(AGENT_TYPES[type].port);
  return {
    name: input.name,
    template: input.template ?? (input.gui ? 'gui' : 'base'),
    type,
    timeoutSeconds,
    idleTimeoutSeconds: input.idle_timeout_seconds ?? null,
    resources: normalizeResources(input.resources, plan),
    env: input.env ?? {},
    ports,
    gui: input.gui ?? false,
    metadata: input.metadata ?? {},
    budgetUsd: input.budget_usd === undefined ? null : normalizeBudget(input.budget_usd),
    network: normalizeNetwork(input.network),
  };
}
