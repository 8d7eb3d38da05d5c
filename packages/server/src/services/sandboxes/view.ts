import type { Config } from '../../config.js';
import type { SandboxRow } from '../../store/schema.js';
import type { SandboxStatus } from './states.js';

/** Agent presets (`type`): the port each serves and its preview-host alias. */
export const AGENT_TYPES = {
  opencode: { port: 4096, alias: 'oc' },
  openclaw: { port: 18789, alias: 'claw' },
} as const;
export type AgentType = keyof typeof AGENT_TYPES;

/** The port the VNC desktop's noVNC page is served on inside a `gui` sandbox. */
export const VNC_PORT = 6080;

/** Resources as the API shows and takes them. */
export interface ResourcesView {
  cpu: number;
  memory_mb: number;
  disk_mb: number;
}

export type NetworkView = { mode: 'internet' } | { mode: 'none' } | { mode: 'allowlist'; allow: string[] };

/** The Sandbox object of API.md. */
export interface SandboxView {
  id: string;
  name: string;
  workspace_id: string;
  status: SandboxStatus;
  template: string;
  type: AgentType | null;
  isolation: string;
  resources: ResourcesView;
  network: NetworkView;
  metadata: Record<string, string>;
  ports: number[];
  gui: boolean;
  ws_url: string;
  preview_urls: Record<string, string>;
  vnc_url: string | null;
  timeout_seconds: number;
  idle_timeout_seconds: number | null;
  created_at: string;
  started_at: string | null;
  expires_at: string;
  last_activity_at: string;
  budget: { limit_usd: string | null; used_usd: string };
  trust_score: number | null;
  error: string | null;
}

/** JSON text from a row, or `fallback` when it does not parse. */
export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/**
 * The preview URL of `port` on sandbox `id`: `{scheme}://{port}-{id}.{previewDomain}[:{port of
 * the public URL}]`, so with the defaults `http://3000-sbx_….localhost:8080` (no DNS needed).
 */
export function previewUrl(config: Config, id: string, port: number | string): string {
  const base = new URL(config.publicUrl);
  const hostPort = base.port ? `:${base.port}` : '';
  return `${base.protocol}//${port}-${id}.${config.previewDomain}${hostPort}`;
}

/** The API view of a sandbox row. */
export function toSandboxView(config: Config, row: SandboxRow): SandboxView {
  const ports = parseJson<number[]>(row.ports, []);
  const type = (row.type as AgentType | null) ?? null;
  const preview_urls: Record<string, string> = {};
  for (const port of ports) preview_urls[String(port)] = previewUrl(config, row.id, port);
  if (type)
    preview_urls[String(AGENT_TYPES[type].port)] = previewUrl(config, row.id, AGENT_TYPES[type].alias);
  const gui = row.gui === 1;
  const wsBase = config.publicUrl.replace(/^http/, 'ws');
  return {
    id: row.id,
    name: row.name,
    workspace_id: row.workspace_id,
    status: row.status as SandboxStatus,
    template: row.template,
    type,
    isolation: row.isolation,
    resources: parseJson<ResourcesView>(row.resources, { cpu: 1, memory_mb: 512, disk_mb: 2048 }),
    network: parseJson<NetworkView>(row.network, { mode: 'internet' }),
    metadata: parseJson<Record<string, string>>(row.metadata, {}),
    ports,
    gui,
    ws_url: `${wsBase}/v1/sandboxes/${row.id}/ws`,
    preview_urls,
    vnc_url: gui ? `${previewUrl(config, row.id, VNC_PORT)}/vnc.html?autoconnect=1&resize=remote` : null,
    timeout_seconds: row.timeout_seconds,
    idle_timeout_seconds: row.idle_timeout_seconds,
    created_at: row.created_at,
    started_at: row.started_at,
    expires_at: row.expires_at,
    last_activity_at: row.last_activity_at,
    budget: { limit_usd: row.budget_usd, used_usd: '0.00' },
    trust_score: row.trust_score,
    error: row.error,
  };
}
