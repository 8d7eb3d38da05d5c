/**
 * Identity mapping shared by templates and drivers. Every sandbox runs in a user namespace
 * mapping inside uids/gids 0..65535 to host 100000..165535 (as Docker's userns-remap does),
 * so root inside a sandbox is uid 100000 on the host, never host root. Template trees are
 * stored already shifted into that range, so the overlay needs no per-sandbox chown.
 */
export const SANDBOX_ID_BASE = 100_000;
/** Number of ids mapped into each sandbox. */
export const SANDBOX_ID_COUNT = 65_536;
/** The non-root user every template has (`user`, home /home/user). */
export const SANDBOX_USER_UID = 1000;
export const SANDBOX_USER_GID = 1000;
export const SANDBOX_USER_NAME = 'user';
export const SANDBOX_USER_HOME = '/home/user';

/** Sandbox ids: what callers may pass as SandboxSpec.id (also safe in paths, cgroup and netns names). */
export const SANDBOX_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
