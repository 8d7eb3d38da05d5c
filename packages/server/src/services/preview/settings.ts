import type { Kysely } from 'kysely';
import { isoNow } from '../../store/db.js';
import type { Database, SandboxPortRow } from '../../store/schema.js';

/** The preview settings of one port: public, and/or password-protected (argon2 hash). */
export interface PortSettings {
  public: boolean;
  passwordHash: string | null;
}

const DEFAULTS: PortSettings = { public: false, passwordHash: null };

/** Hears that a port's settings changed on this server (the proxy drops what it cached). */
export type PortSettingsListener = (sandboxId: string, port: number) => void;

const listeners = new Set<PortSettingsListener>();

/** Calls `listener` after every `updatePortSettings` of this process; returns the unsubscribe. */
export function onPortSettingsChange(listener: PortSettingsListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function toSettings(row: SandboxPortRow | undefined): PortSettings {
  return row ? { public: row.public === 1, passwordHash: row.password_hash } : DEFAULTS;
}

/** The settings of `port` (private, no password when never set). */
export async function portSettings(
  db: Kysely<Database>,
  sandboxId: string,
  port: number,
): Promise<PortSettings> {
  const row = await db
    .selectFrom('sandbox_ports')
    .selectAll()
    .where('sandbox_id', '=', sandboxId)
    .where('port', '=', port)
    .executeTakeFirst();
  return toSettings(row);
}

/** Every port of a sandbox with settings, by port. */
export async function allPortSettings(
  db: Kysely<Database>,
  sandboxId: string,
): Promise<Map<number, PortSettings>> {
  const rows = await db.selectFrom('sandbox_ports').selectAll().where('sandbox_id', '=', sandboxId).execute();
  return new Map(rows.map((row) => [row.port, toSettings(row)]));
}

/**
 * Changes some settings of `port` (an upsert); a row back at the defaults is removed. Returns
 * the settings as stored. Listeners (`onPortSettingsChange`) hear of it once it is committed,
 * so a port made private or protected is refused at once by this server's preview proxy.
 */
export async function updatePortSettings(
  db: Kysely<Database>,
  sandboxId: string,
  port: number,
  patch: Partial<PortSettings>,
): Promise<PortSettings> {
  try {
    return await writePortSettings(db, sandboxId, port, patch);
  } finally {
    // Also after a failure: the row may have changed anyway (a commit that reported an error).
    for (const listener of listeners) listener(sandboxId, port);
  }
}

async function writePortSettings(
  db: Kysely<Database>,
  sandboxId: string,
  port: number,
  patch: Partial<PortSettings>,
): Promise<PortSettings> {
  return db.transaction().execute(async (trx) => {
    const current = await portSettings(trx, sandboxId, port);
    const next: PortSettings = { ...current, ...patch };
    await trx
      .deleteFrom('sandbox_ports')
      .where('sandbox_id', '=', sandboxId)
      .where('port', '=', port)
      .execute();
    if (next.public || next.passwordHash !== null) {
      await trx
        .insertInto('sandbox_ports')
        .values({
          sandbox_id: sandboxId,
          port,
          public: next.public ? 1 : 0,
          password_hash: next.passwordHash,
          updated_at: isoNow(),
        })
        .execute();
    }
    return next;
  });
}
