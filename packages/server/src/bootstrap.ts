import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';
import { newId } from './ids.js';
import { createApiKey } from './services/keys.js';
import { hashPassword } from './services/passwords.js';
import type { AuditLog } from './store/audit.js';
import { isoNow, type Store } from './store/db.js';
import { insertMember } from './store/members.js';
import { insertUser, isUniqueViolation } from './store/users.js';
import { insertWorkspace } from './store/workspaces.js';

/** The first administrator's credentials, shown once on first start. */
export interface AdminCredentials {
  url: string;
  email: string;
  password: string;
  api_key: string;
  workspace_id: string;
  user_id: string;
}

/** The first administrator's email address. */
export const ADMIN_EMAIL = 'admin@corral.local';

/** Where the first start writes the credentials (mode 0600). */
export function credentialsPath(dataDir: string): string {
  return join(dataDir, 'admin-credentials.json');
}

/**
 * On first start (no user at all): creates the admin user with a random password, a personal
 * workspace on the default plan and an API key with scope `*`, and writes them to
 * `<data>/admin-credentials.json` (0600). Returns them, or null when users already exist
 * (including when another replica won the race to create the admin).
 */
export async function bootstrapFirstStart(deps: {
  config: Config;
  store: Store;
  audit: AuditLog;
}): Promise<AdminCredentials | null> {
  const { config, store, audit } = deps;
  const existing = await store.db.selectFrom('users').select('id').limit(1).executeTakeFirst();
  if (existing) return null;

  const password = randomBytes(18).toString('base64url');
  const userId = newId('usr');
  const workspaceId = newId('ws');
  const now = isoNow();
  const passwordHash = await hashPassword(password);
  try {
    await store.db.transaction().execute(async (trx) => {
      await insertUser(trx, {
        id: userId,
        email: ADMIN_EMAIL,
        name: 'Administrator',
        password_hash: passwordHash,
        is_admin: 1,
        created_at: now,
      });
      await insertWorkspace(trx, {
        id: workspaceId,
        name: "Administrator's workspace",
        plan: config.defaultPlan,
        personal: 1,
        created_by: userId,
        created_at: now,
        deleted_at: null,
      });
      await insertMember(trx, { workspace_id: workspaceId, user_id: userId, role: 'owner', created_at: now });
      await audit.record(
        {
          workspaceId,
          actorType: 'system',
          action: 'user.bootstrap',
          targetType: 'user',
          targetId: userId,
          details: { email: ADMIN_EMAIL },
        },
        trx,
      );
    });
  } catch (err) {
    if (isUniqueViolation(err)) return null;
    throw err;
  }
  const key = await createApiKey(
    { store, audit },
    { userId, workspaceId, name: 'first-start admin key', scopes: ['*'] },
  );
  const credentials: AdminCredentials = {
    url: config.publicUrl,
    email: ADMIN_EMAIL,
    password,
    api_key: key.key,
    workspace_id: workspaceId,
    user_id: userId,
  };
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(credentialsPath(config.dataDir), `${JSON.stringify(credentials, null, 2)}\n`, {
    mode: 0o600,
  });
  return credentials;
}

/** The credentials in a box, for printing once to stdout on first start. */
export function formatCredentialsBox(credentials: AdminCredentials, dataDir: string): string {
  const lines = [
    'Corral is running. First start: an administrator was created.',
    '',
    `  URL        ${credentials.url}`,
    `  Docs       ${credentials.url}/docs`,
    `  Email      ${credentials.email}`,
    `  Password   ${credentials.password}`,
    `  API key    ${credentials.api_key}`,
    `  Workspace  ${credentials.workspace_id}`,
    '',
    'The API key is shown only this once. A copy is in',
    `  ${credentialsPath(dataDir)} (mode 0600)`,
    '',
    'Try it:',
    `  curl -H "Authorization: Bearer ${credentials.api_key}" ${credentials.url}/v1/auth/me`,
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = '─'.repeat(width + 2);
  return [`┌${bar}┐`, ...lines.map((l) => `│ ${l.padEnd(width)} │`), `└${bar}┘`, ''].join('\n');
}
