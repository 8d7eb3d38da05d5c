import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime, TemplateStore } from '@corral/runtime';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { FrontDoor } from './front-door.js';
import { createLogger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { registerOpenApi } from './openapi.js';
import { registerAuthentication } from './plugins/authenticate.js';
import { frameworkErrorHandler, registerErrorHandler } from './plugins/error-handler.js';
import { registerInputGuard } from './plugins/input-guard.js';
import { registerMetrics } from './plugins/metrics.js';
import { registerPreviewProxy } from './plugins/preview.js';
import { registerRateLimit } from './plugins/rate-limit.js';
import { registerRequestId, requestIdFor } from './plugins/request-id.js';
import { registerRuntimeReadiness } from './plugins/runtime-readiness.js';
import { registerSandboxJobs } from './plugins/sandbox-jobs.js';
import { registerSessionCleanup } from './plugins/session-cleanup.js';
import { registerValidation } from './plugins/validation.js';
import type { RateLimitStore } from './ratelimit/index.js';
import { registerRoutes } from './routes/index.js';
import type { ReadinessCheck } from './routes/ops/health.js';
import { SandboxTokens } from './services/sandbox-tokens.js';
import { SandboxService } from './services/sandboxes/service.js';
import { loadSecretsKey, SecretBox } from './services/secrets.js';
import { createTokenConnections, type TokenConnections } from './services/token-connections.js';
import { AuditLog } from './store/audit.js';
import type { Store } from './store/db.js';

/** The Fastify instance every route registrar receives (TypeBox type provider). */
export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

declare module 'fastify' {
  interface FastifyInstance {
    /** The frozen configuration. */
    config: Config;
    /** The open, migrated store. */
    store: Store;
    /** The audit log over the store. */
    audit: AuditLog;
    /** The Prometheus registry and the HTTP metrics. */
    metrics: Metrics;
    /** Named checks behind `GET /readyz`; add with `addReadinessCheck`. */
    readinessChecks: Map<string, ReadinessCheck>;
    /** The sandbox domain over the runtime (503 on sandbox calls when built without one). */
    sandboxes: SandboxService;
    /** Tunnel, observe and port-forward tokens: scoped to one sandbox, hashed, expiring, revocable. */
    sandboxTokens: SandboxTokens;
    /** The rate-limit store (Redis when configured, else memory) for per-key limits beyond the API's own. */
    rateLimitStore: RateLimitStore;
    /** The HTTP server's front door: handlers that claim requests by Host before routing (preview proxy). */
    frontDoor: FrontDoor;
    /** Connections opened with sandbox tokens or SSH keys, closed when the credential ends. */
    tokenConnections: TokenConnections;
  }
}

/** What `buildApp` needs; everything else hangs off `app`. */
export interface AppDeps {
  config: Config;
  store: Store;
  /** Defaults to a pino logger on stdout at `config.logLevel`. */
  logger?: Logger;
  /** Process metrics (CPU, memory …) in /metrics; tests building many apps may turn them off. */
  defaultMetrics?: boolean;
  /** The sandbox runtime (see `openRuntime`); without one, sandbox routes answer 503. The caller owns it. */
  runtime?: Runtime;
  /** The template store the runtime resolves templates from. */
  templates?: TemplateStore;
}

/** The dependencies handed to the authentication and rate-limit plugins. */
export interface PluginDeps {
  config: Config;
  store: Store;
  audit: AuditLog;
  metrics: Metrics;
}

/**
 * Builds the HTTP app: request ids, validation, the error shape, metrics, OpenAPI, the
 * authentication and rate-limit plugins, and every route. Does not listen; `app.inject()`
 * works at once. The caller owns the store (closing the app does not close it).
 */
export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, store } = deps;
  const frontDoor = new FrontDoor();
  const app = Fastify({
    serverFactory: frontDoor.serverFactory,
    loggerInstance: (deps.logger ?? createLogger({ level: config.logLevel })) as FastifyBaseLogger,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // One log line per request is written by the metrics plugin instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    return503OnClosing: true,
    frameworkErrors: frameworkErrorHandler,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = createMetrics({ defaultMetrics: deps.defaultMetrics ?? true });
  const audit = new AuditLog(store.db);
  app.decorate('config', config);
  app.decorate('store', store);
  app.decorate('audit', audit);
  app.decorate('metrics', metrics);
  app.decorate('readinessChecks', new Map<string, ReadinessCheck>([['database', () => store.ping()]]));
  const sandboxes = new SandboxService({
    config,
    db: store.db,
    audit,
    metrics,
    log: app.log,
    runtime: deps.runtime ?? null,
    templates: deps.templates ?? null,
    secrets: new SecretBox(loadSecretsKey(config.dataDir, config.secretsKey)),
  });
  app.decorate('sandboxes', sandboxes);
  app.decorate('sandboxTokens', new SandboxTokens(store.db));
  app.decorate('frontDoor', frontDoor);
  app.decorate('tokenConnections', createTokenConnections(app));

  registerRequestId(app);
  registerValidation(app);
  registerInputGuard(app);
  registerErrorHandler(app, { bodyLimitBytes: config.bodyLimitBytes });
  registerMetrics(app, metrics);
  // JSON only: any other body type on these routes is 415. Routes taking raw bodies (file
  // uploads) add their own parser inside their own encapsulated context.
  app.removeContentTypeParser('text/plain');
  await registerOpenApi(app, { publicUrl: config.publicUrl });

  const pluginDeps: PluginDeps = { config, store, audit, metrics };
  // --- cross-cutting plugins (S2: authentication, S3: rate limiting) — one line each ---
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } }); // before auth: a refused upgrade's socket is closed; frames ≤ 1 MiB
  await registerAuthentication(app, pluginDeps);
  await registerRateLimit(app, pluginDeps);
  void pluginDeps;

  await registerRoutes(app);
  registerPreviewProxy(app);
  registerSessionCleanup(app);
  registerSandboxJobs(app);
  registerRuntimeReadiness(app);
  return app;
}
