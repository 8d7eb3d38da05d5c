import { AGENT_TYPES } from '../sandboxes/view.js';

/** Where a preview host points: a sandbox and a TCP port inside it. */
export interface PreviewTarget {
  sandboxId: string;
  port: number;
}

/** `{label}-{sandbox id}` — the first DNS label of a preview host. */
const LABEL = /^([0-9]{1,5}|[a-z]+)-(sbx_[0-9a-z]+)$/;

/** Alias labels (`oc`, `claw`) → the port of their agent preset. */
const ALIASES: ReadonlyMap<string, number> = new Map(
  Object.values(AGENT_TYPES).map((preset) => [preset.alias, preset.port]),
);

/**
 * The sandbox and port a `Host` header names, or null when it is not a preview host:
 * `{port}-{sandbox_id}.{previewDomain}` (port 1–65535), `oc-{id}.…` (4096) or `claw-{id}.…`
 * (18789). The host is lowercased and its `:port` dropped first (sandbox ids are lowercase
 * base36, so a lowercased host still names the right one).
 */
export function parsePreviewHost(host: string | undefined, previewDomain: string): PreviewTarget | null {
  if (!host) return null;
  const name = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  const suffix = `.${previewDomain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return null;
  const label = name.slice(0, -suffix.length);
  const match = LABEL.exec(label);
  if (!match) return null;
  const [, head, sandboxId] = match as unknown as [string, string, string];
  let port: number;
  if (/^[0-9]+$/.test(head)) {
    port = Number(head);
    if (port < 1 || port > 65_535 || String(port) !== head) return null;
  } else {
    const alias = ALIASES.get(head);
    if (alias === undefined) return null;
    port = alias;
  }
  return { sandboxId, port };
}
