import { AGENT_TYPES } from '../sandboxes/view.js';
import { TOKEN_PARAM } from './access.js';

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

/**
 * The request target as the client sent it (not normalised: the app inside sees its own
 * encoding and dot segments) without any `corral_token` parameter — what is forwarded, and
 * where the cookie redirect goes.
 */
export function pathWithoutToken(rawUrl: string | undefined): string {
  let target = rawUrl ?? '/';
  if (!target.startsWith('/')) {
    // absolute-form (`GET http://host/path`): keep the path and query only
    const url = new URL(target, 'http://preview.invalid');
    target = `${url.pathname}${url.search}`;
  }
  const q = target.indexOf('?');
  if (q < 0) return target;
  const kept = target
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const name = pair.split('=', 1)[0]!;
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {}
      return decoded !== TOKEN_PARAM;
    });
  return kept.length > 0 ? `${target.slice(0, q)}?${kept.join('&')}` : target.slice(0, q);
}
