import type { Kysely } from 'kysely';
import { isoNow } from '../../store/db.js';
import type { Database } from '../../store/schema.js';
import type { SecretBox } from '../secrets.js';

/** A `sandbox_env` row to insert: the value encrypted, bound to its sandbox and name. */
export interface EncryptedEnvRow {
  sandbox_id: string;
  name: string;
  value: string;
  updated_at: string;
}

/** The additional authenticated data binding an env ciphertext to its sandbox and name. */
export function envContext(sandboxId: string, name: string): string {
  return `sandbox_env/${sandboxId}/${name}`;
}

/**
 * Sandboxes' secret env: encrypted rows in the store, decrypted on demand and cached in
 * memory (every exec reads it). A change bumps the sandbox's generation, so a read that began
 * before the change never caches the values it read.
 */
export class SandboxEnvSecrets {
  readonly #cache = new Map<string, Record<string, string>>();
  readonly #generation = new Map<string, number>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly secrets: SecretBox,
  ) {}

  /** The sandbox's env, decrypted. */
  async get(id: string): Promise<Record<string, string>> {
    const cached = this.#cache.get(id);
    if (cached) return cached;
    const generation = this.#generation.get(id) ?? 0;
    const rows = await this.db
      .selectFrom('sandbox_env')
      .select(['name', 'value'])
      .where('sandbox_id', '=', id)
      .execute();
    const env: Record<string, string> = {};
    for (const row of rows) env[row.name] = this.secrets.decrypt(row.value, envContext(id, row.name));
    if ((this.#generation.get(id) ?? 0) === generation) this.#cache.set(id, env);
    return env;
  }

  /** Forgets the cached env (call after every change, and on destroy). */
  forget(id: string): void {
    this.#cache.delete(id);
    this.#generation.set(id, (this.#generation.get(id) ?? 0) + 1);
  }

  /** Forgets a destroyed sandbox entirely. */
  drop(id: string): void {
    this.#cache.delete(id);
    this.#generation.delete(id);
  }

  /** Rows for `sandbox_env`, each value encrypted and bound to its sandbox and name. */
  encrypt(id: string, vars: Record<string, string>): EncryptedEnvRow[] {
    const now = isoNow();
    return Object.entries(vars).map(([name, value]) => ({
      sandbox_id: id,
      name,
      value: this.secrets.encrypt(value, envContext(id, name)),
      updated_at: now,
    }));
  }
}
