import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { bootstrapFirstStart, formatCredentialsBox } from './bootstrap.js';
import { type Config, ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { claimNetwork } from './network-claim.js';
import { openSandboxEngine } from './sandbox-runtime.js';
import { reconcileSandboxes } from './services/sandboxes/reconcile.js';
import { type SshGateway, startSshGateway } from './services/ssh/gateway.js';
import { openStore, type Store } from './store/db.js';

/** A started server: its address, and `stop()` for a graceful shutdown. */
export interface RunningServer {
  config: Config;
  app: FastifyInstance;
  store: Store;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts Corral: loads the config from `env`, opens and migrates the store, builds the app,
 * listens, and on first start creates the admin and prints its credentials once.
 * Throws ConfigError (one line) on bad configuration.
 */
export async function startServer(env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  const config = loadConfig(env);
  const logger = createLogger({ level: config.logLevel });
  const store = openStore(config);
  try {
    const applied = await store.migrate();
    if (applied.length > 0) logger.info({ migrations: applied, dialect: store.dialect }, 'database migrated');
  } catch (err) {
    await store.close();
    throw err;
  }
  let releaseNetwork: () => void;
  try {
    releaseNetwork = claimNetwork(config);
  } catch (err) {
    await store.close();
    throw err;
  }
  const engine = openSandboxEngine(config);
  const app = await buildApp({ config, store, logger, runtime: engine.runtime, templates: engine.templates });
  let ssh: SshGateway | null = null;
  try {
    // Store and runtime agree before the first request: no orphans, no ghosts, nothing stuck.
    const report = await reconcileSandboxes(app.sandboxes);
    logger.info({ ...report }, 'sandboxes reconciled');
    await app.listen({ port: config.port, host: config.host });
    if (config.sshPort > 0) ssh = await listenSsh(app, config);
  } catch (err) {
    await ssh?.close();
    await app.close();
    await engine.runtime.close();
    releaseNetwork();
    await store.close();
    throw err;
  }
  logger.info(
    { url: config.publicUrl, host: config.host, port: config.port, database: store.dialect },
    'listening',
  );

  const credentials = await bootstrapFirstStart({ config, store, audit: app.audit });
  if (credentials) process.stdout.write(`\n${formatCredentialsBox(credentials, config.dataDir)}\n`);

  const periodic = startPeriodicReconcile(app, logger);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await periodic.stop();
      await ssh?.close();
      await app.close();
      // Sandboxes keep running; the runtime only lets go of its handles.
      await engine.runtime.close();
      releaseNetwork();
      await store.close();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })();
    return stopping;
  };
  return { config, app, store, url: config.publicUrl, stop };
}

/** Starts the SSH gateway on CORRAL_SSH_PORT; a port it cannot bind is a start-up error. */
async function listenSsh(app: FastifyInstance, config: Config): Promise<SshGateway> {
  try {
    const gateway = await startSshGateway(app, { port: config.sshPort, host: config.host });
    app.log.info({ host: config.host, port: gateway.port }, 'ssh gateway listening');
    return gateway;
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(
      `the SSH gateway cannot listen on ${config.host}:${config.sshPort} (${reason}): set CORRAL_SSH_PORT to a free port, or 0 to turn it off`,
    );
  }
}

/** How often a running server re-checks store against runtime (sandboxes that crashed, OOMs …). */
const RECONCILE_INTERVAL_MS = 60_000; // one minute

/**
 * Re-runs reconciliation every minute in `periodic` mode (in-flight transitional rows are left
 * alone); never two passes at once; `stop()` waits for a pass in flight.
 */
function startPeriodicReconcile(app: FastifyInstance, logger: Logger) {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = reconcileSandboxes(app.sandboxes, { mode: 'periodic' })
      .then((report) => {
        const fixed = report.orphansDestroyed + report.ghostsSettled + report.statusesFixed;
        if (fixed + report.failures > 0) logger.info({ ...report }, 'sandboxes reconciled');
      })
      .catch((err: unknown) => logger.warn({ err }, 'periodic reconciliation failed'))
      .finally(() => {
        running = null;
      });
  }, RECONCILE_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** Runs the server as the process: one-line errors and exit 1, graceful stop on SIGINT/SIGTERM. */
export async function runMain(): Promise<void> {
  let server: RunningServer;
  try {
    server = await startServer(process.env);
  } catch (err) {
    const line =
      err instanceof ConfigError ? err.message : `corral: failed to start: ${(err as Error).message}`;
    process.stderr.write(`${line.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(1);
  }
  const onSignal = (signal: NodeJS.Signals) => {
    server.app.log.info({ signal }, 'shutting down');
    // A second signal while draining means "now".
    process.once(signal, () => process.exit(130));
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`corral: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await runMain();
