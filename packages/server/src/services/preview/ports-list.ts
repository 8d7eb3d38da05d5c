import type { PortInfo } from '@corral/runtime';
import type { Config } from '../../config.js';
import type { SandboxRow } from '../../store/schema.js';
import { AGENT_TYPES, type AgentType, parseJson, previewUrl } from '../sandboxes/view.js';
import type { PortSettings } from './settings.js';

/** One entry of `GET …/ports`. */
export interface PortView {
  port: number;
  protocol: 'tcp';
  /** Bound address inside the sandbox; null when not listening. */
  address: string | null;
  process: string | null;
  pid: number | null;
  /** False for a port the sandbox declares (or has settings for) that nothing listens on yet. */
  listening: boolean;
  preview_url: string;
  public: boolean;
  protected: boolean;
}

/**
 * The ports view: every listening port (one entry per port — a server bound on both IPv4 and
 * IPv6 shows once), then the declared ports (`ports`, the agent preset's) and ports with
 * preview settings that nothing listens on, as `listening: false`; sorted by port.
 */
export function portsView(
  config: Config,
  row: SandboxRow,
  listening: readonly PortInfo[],
  settings: ReadonlyMap<number, PortSettings>,
): PortView[] {
  const byPort = new Map<number, PortView>();
  const entry = (port: number, info: PortInfo | null): PortView => {
    const s = settings.get(port);
    return {
      port,
      protocol: 'tcp',
      address: info?.address ?? null,
      process: info?.process ?? null,
      pid: info?.pid ?? null,
      listening: info !== null,
      preview_url: previewUrl(config, row.id, port),
      public: s?.public ?? false,
      protected: (s?.passwordHash ?? null) !== null,
    };
  };
  for (const info of listening) if (!byPort.has(info.port)) byPort.set(info.port, entry(info.port, info));
  const declared = parseJson<number[]>(row.ports, []);
  if (row.type && row.type in AGENT_TYPES) declared.push(AGENT_TYPES[row.type as AgentType].port);
  for (const port of [...declared, ...settings.keys()]) {
    if (!byPort.has(port)) byPort.set(port, entry(port, null));
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}
