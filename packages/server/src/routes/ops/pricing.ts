import { type Static, Type } from 'typebox';
import type { App } from '../../app.js';
import { PLAN_IDS, PLANS, type Plan } from '../../plans.js';

const Money = Type.Object({ amount_usd: Type.String({ pattern: '^\\d+\\.\\d{2}$', examples: ['20.00'] }) });

const PlanSchema = Type.Object({
  id: Type.Enum(PLAN_IDS),
  name: Type.String(),
  price_per_month: Money,
  price_per_cpu_hour: Money,
  rate_limit: Type.Object({ requests_per_minute: Type.Integer() }),
  concurrency: Type.Object({ max_sandboxes: Type.Integer() }),
  resources: Type.Object({
    max_cpu: Type.Number(),
    max_memory_mb: Type.Integer(),
    max_disk_mb: Type.Integer(),
    max_timeout_seconds: Type.Integer(),
  }),
  limits: Type.Object({ max_snapshots: Type.Integer(), max_members: Type.Integer() }),
});

const PricingResponse = Type.Object({ data: Type.Array(PlanSchema), default_plan: Type.String() });

function toApi(plan: Plan): Static<typeof PlanSchema> {
  return {
    id: plan.id,
    name: plan.name,
    price_per_month: { amount_usd: plan.priceUsdPerMonth },
    price_per_cpu_hour: { amount_usd: plan.priceUsdPerCpuHour },
    rate_limit: { requests_per_minute: plan.requestsPerMinute },
    concurrency: { max_sandboxes: plan.maxConcurrentSandboxes },
    resources: {
      max_cpu: plan.maxCpu,
      max_memory_mb: plan.maxMemoryMb,
      max_disk_mb: plan.maxDiskMb,
      max_timeout_seconds: plan.maxTimeoutSeconds,
    },
    limits: { max_snapshots: plan.maxSnapshots, max_members: plan.maxMembers },
  };
}

/** `GET /v1/pricing`: the plans, their limits and prices (public). */
export function registerPricingRoute(app: App): void {
  app.get(
    '/v1/pricing',
    {
      config: { public: true },
      schema: {
        tags: ['billing'],
        summary: 'Plans with their rate limits, caps and prices',
        response: { 200: PricingResponse },
      },
    },
    async () => ({ data: PLAN_IDS.map((id) => toApi(PLANS[id])), default_plan: app.config.defaultPlan }),
  );
}
