import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (tests run `npm run build` output, as users do). */
export const MAIN = resolve(fileURLToPath(new URL('../dist/main.js', import.meta.url)));

/** What a CLI run gave back. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a CLI run sees: the test server's URL and key, and a private config dir. */
export interface CliEnv {
  CORRAL_URL?: string;
  CORRAL_API_KEY?: string;
  XDG_CONFIG_HOME: string;
}

/** A fresh config dir for a suite. */
export async function tempConfigHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'corral-cli-'));
}

/** Runs `node dist/main.js …args` with `env`; `input` is written to its stdin (closed either way). */
export function corral(env: CliEnv, args: string[], input?: string | Buffer): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const { CORRAL_URL: _u, CORRAL_API_KEY: _k, ...base } = process.env;
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...base, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Runs and parses stdout as JSON, failing with stderr when the run failed. */
export async function corralJson<T>(env: CliEnv, args: string[]): Promise<T> {
  const r = await corral(env, [...args, '--json']);
  if (r.code !== 0) throw new Error(`corral ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
