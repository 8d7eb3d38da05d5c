import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Corral } from '@corral/sdk/node';
import { CliError } from './errors.js';

/** What `corral login` stores. */
export interface StoredConfig {
  url: string;
  api_key: string;
}

/** `$XDG_CONFIG_HOME/corral` or `~/.config/corral`. */
export function configDir(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'corral');
}

/** The config file's path. */
export function configPath(): string {
  return join(configDir(), 'config.json');
}

/** The stored config, or null when there is none (or it does not parse). */
export async function readConfig(): Promise<StoredConfig | null> {
  try {
    const parsed = JSON.parse(await readFile(configPath(), 'utf8')) as Partial<StoredConfig>;
    if (typeof parsed.url === 'string' && typeof parsed.api_key === 'string') {
      return { url: parsed.url, api_key: parsed.api_key };
    }
    return null;
  } catch {
    return null;
  }
}

/** Writes the config: directory 0700, file 0600 (also when they existed with looser modes). */
export async function writeConfig(config: StoredConfig): Promise<string> {
  await mkdir(configDir(), { recursive: true, mode: 0o700 });
  await chmod(configDir(), 0o700);
  const path = configPath();
  await writeFile(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

/** Removes the stored config; true when there was one. */
export async function removeConfig(): Promise<boolean> {
  const had = (await readConfig()) !== null;
  await rm(configPath(), { force: true });
  return had;
}

/** Where the URL and key come from: `CORRAL_URL`/`CORRAL_API_KEY` win over the config file. */
export async function resolveCredentials(): Promise<{ url: string; apiKey: string | null; source: string }> {
  const stored = await readConfig();
  const url = process.env.CORRAL_URL || stored?.url || 'http://127.0.0.1:8080';
  const envKey = process.env.CORRAL_API_KEY;
  if (envKey) return { url, apiKey: envKey, source: 'CORRAL_API_KEY' };
  return { url, apiKey: stored?.api_key ?? null, source: stored ? configPath() : 'none' };
}

/** A client for the configured server; fails with the next step when no key is known. */
export async function client(): Promise<Corral> {
  const { url, apiKey } = await resolveCredentials();
  if (!apiKey) {
    throw new CliError('Not logged in.', 'run `corral login` (or set CORRAL_URL and CORRAL_API_KEY)');
  }
  return new Corral({ baseUrl: url, apiKey });
}
