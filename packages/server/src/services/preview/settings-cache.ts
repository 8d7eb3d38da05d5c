import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.js';
import { ExpiringCache } from './cache.js';
import { onPortSettingsChange, type PortSettings, portSettings } from './settings.js';

/** How long a port's settings are trusted (changes made on this server apply at once). */
export const SETTINGS_CACHE_MS = 5_000;

/**
 * Port settings as the proxy reads them: from the store at most every SETTINGS_CACHE_MS per
 * port, dropped at once when `updatePortSettings` changes them in this process (so a port made
 * private or protected here is closed on the next request; another server's change shows
 * within SETTINGS_CACHE_MS).
 */
export class PortSettingsCache {
  readonly #db: Kysely<Database>;
  readonly #cache = new ExpiringCache<PortSettings>();
  readonly #unsubscribe: () => void;

  /** `onChange` hears every change made here too (the proxy drops what else it cached). */
  constructor(db: Kysely<Database>, onChange: (sandboxId: string, port: number) => void) {
    this.#db = db;
    this.#unsubscribe = onPortSettingsChange((sandboxId, port) => {
      this.#cache.delete(`${sandboxId}:${port}`);
      onChange(sandboxId, port);
    });
  }

  /** The settings of `port` of `sandboxId`. */
  async get(sandboxId: string, port: number): Promise<PortSettings> {
    const key = `${sandboxId}:${port}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const epoch = this.#cache.epoch;
    const settings = await portSettings(this.#db, sandboxId, port);
    this.#cache.set(key, settings, SETTINGS_CACHE_MS, epoch);
    return settings;
  }

  /** Drops every port of `sandboxId`. */
  forget(sandboxId: string): void {
    this.#cache.deletePrefix(`${sandboxId}:`);
  }

  /** Stops listening for changes (server shutdown). */
  close(): void {
    this.#unsubscribe();
  }
}
