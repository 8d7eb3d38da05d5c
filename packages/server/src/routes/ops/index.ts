import type { App } from '../../app.js';
import { registerHealthRoutes } from './health.js';
import { registerMetricsRoute } from './metrics.js';
import { registerPricingRoute } from './pricing.js';

/** The public operational routes: health, readiness, metrics, pricing. */
export async function registerOpsRoutes(app: App): Promise<void> {
  registerHealthRoutes(app);
  registerMetricsRoute(app);
  registerPricingRoute(app);
}
