/**
 * API scopes (API.md "Authentication"). A key holds a subset; a JWT inherits its key's; a
 * dashboard session holds `*` (the user's role in each workspace is what limits it).
 */
export const SCOPES = [
  'sandbox:create',
  'sandbox:read',
  'sandbox:write',
  'sandbox:exec',
  'sandbox:delete',
  'snapshot:*',
  'billing:*',
  'alerts:*',
  'workspace:admin',
  '*',
] as const;

/** Resources that may appear before the colon of a scope. */
const SCOPE_RESOURCES = ['sandbox', 'snapshot', 'billing', 'alerts', 'workspace'] as const;

/**
 * True when `scope` is grantable: one of `SCOPES`, a `resource:*` wildcard of a known
 * resource, or a narrower `resource:action` (e.g. `snapshot:read`) under a known resource.
 */
export function isValidScope(scope: string): boolean {
  if ((SCOPES as readonly string[]).includes(scope)) return true;
  const match = /^([a-z]+):(\*|[a-z][a-z_]{0,31})$/.exec(scope);
  return match !== null && (SCOPE_RESOURCES as readonly string[]).includes(match[1]!);
}

/**
 * True when the held scopes cover `required`: an exact match, `*`, or `resource:*` for any
 * `resource:…`. `required` may itself be a wildcard (used when checking that a new key's
 * scopes are a subset of its creator's): `snapshot:*` is covered by `snapshot:*` or `*` only.
 */
export function scopeAllows(held: readonly string[], required: string): boolean {
  if (held.includes('*') || held.includes(required)) return true;
  const colon = required.indexOf(':');
  return colon > 0 && held.includes(`${required.slice(0, colon)}:*`);
}

/** The first of `requested` not covered by `held`, or null when all are. */
export function firstUncoveredScope(held: readonly string[], requested: readonly string[]): string | null {
  return requested.find((scope) => !scopeAllows(held, scope)) ?? null;
}
