import type { TokenResponse } from './types.js';

/** How long before its expiry a token is replaced (or a fifth of its life, if shorter). */
const REFRESH_MARGIN_MS = 60_000;

/** Exchanges the token endpoint's answer: `POST /v1/auth/token {api_key}` → `{token, expires_at}`. */
export type TokenExchange = (apiKey: string, signal?: AbortSignal) => Promise<TokenResponse>;

/**
 * The JWT the client sends: exchanged from the API key on first use, replaced shortly before
 * it expires, and on demand after a 401 (`invalidate`). Concurrent callers share one exchange.
 */
export class TokenSource {
  private current: { token: string; refreshAtMs: number } | null = null;
  private pending: Promise<string> | null = null;

  constructor(
    private readonly apiKey: string,
    private readonly exchange: TokenExchange,
    private readonly now: () => number = Date.now,
  ) {}

  /** A token valid for a while yet; exchanges the key when there is none. */
  async token(signal?: AbortSignal): Promise<string> {
    if (this.current && this.now() < this.current.refreshAtMs) return this.current.token;
    this.pending ??= this.refresh(signal).finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /** Forgets `token` (the server refused it), so the next call exchanges the key again. */
  invalidate(token: string): void {
    if (this.current?.token === token) this.current = null;
  }

  private async refresh(signal?: AbortSignal): Promise<string> {
    const issuedAt = this.now();
    const answer = await this.exchange(this.apiKey, signal);
    // The token's own iat/exp give its lifetime whatever the clocks say; expires_at against
    // our clock is the fallback (a skewed clock then refreshes early or late).
    const expiresAt = Date.parse(answer.expires_at);
    const lifetime = jwtLifetimeMs(answer.token) ?? (Number.isNaN(expiresAt) ? 0 : expiresAt - issuedAt);
    const margin = Math.min(REFRESH_MARGIN_MS, lifetime / 5);
    this.current = { token: answer.token, refreshAtMs: issuedAt + lifetime - margin };
    return answer.token;
  }
}

/** `exp − iat` of a JWT in ms, or null when the token is not a JWT carrying both. */
export function jwtLifetimeMs(token: string): number | null {
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const json = atob(
      payload
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(payload.length / 4) * 4, '='),
    );
    const claims = JSON.parse(json) as { iat?: unknown; exp?: unknown };
    if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return null;
    return (claims.exp - claims.iat) * 1000;
  } catch {
    return null;
  }
}
