import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The server's Prometheus metrics, in a registry of their own (so tests can build many apps). */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequestsTotal: Counter<'method' | 'route' | 'status'>;
  readonly httpRequestDurationSeconds: Histogram<'method' | 'route'>;
  /** Sandboxes holding processes (starting, running, paused, stopping); set by the sandbox service. */
  readonly sandboxesActive: Gauge;
  readonly sandboxCreateTotal: Counter<'result'>;
  readonly sandboxDeleteTotal: Counter<'reason'>;
  /** Commands run through the API, by mode (sync, stream) and result (ok, error, timeout). */
  readonly execTotal: Counter<'mode' | 'result'>;
  readonly execDurationSeconds: Histogram<'mode'>;
}

/**
 * Creates the registry with the HTTP metrics and, unless `defaultMetrics` is false, the
 * process metrics (CPU, memory, event loop lag, GC) prefixed `corral_`. Later features add
 * their own metrics to `registry`.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'corral_' });
  return {
    registry,
    httpRequestsTotal: new Counter({
      name: 'corral_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpRequestDurationSeconds: new Histogram({
      name: 'corral_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    sandboxesActive: new Gauge({
      name: 'corral_sandboxes_active',
      help: 'Sandboxes holding processes: starting, running, paused or stopping.',
      registers: [registry],
    }),
    sandboxCreateTotal: new Counter({
      name: 'corral_sandbox_create_total',
      help: 'Sandboxes created, by result (ok, error).',
      labelNames: ['result'],
      registers: [registry],
    }),
    sandboxDeleteTotal: new Counter({
      name: 'corral_sandbox_delete_total',
      help: 'Sandboxes destroyed, by reason (api, expired, reconcile).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    execTotal: new Counter({
      name: 'corral_exec_total',
      help: 'Commands run in sandboxes through the API, by mode and result.',
      labelNames: ['mode', 'result'],
      registers: [registry],
    }),
    execDurationSeconds: new Histogram({
      name: 'corral_exec_duration_seconds',
      help: 'Wall time of commands run through the API, by mode.',
      labelNames: ['mode'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
  };
}
