import { Type } from 'typebox';
import type { App } from '../../app.js';

/** `GET /metrics`: Prometheus text exposition of the app's registry (public, like /healthz). */
export function registerMetricsRoute(app: App): void {
  app.get(
    '/metrics',
    {
      config: { public: true },
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics',
        response: { 200: Type.String({ description: 'Prometheus text format 0.0.4.' }) },
      },
    },
    async (_request, reply) => {
      reply.type(app.metrics.registry.contentType);
      return app.metrics.registry.metrics();
    },
  );
}
