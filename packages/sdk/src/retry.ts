/*
 * When and how long to wait before trying a request again: 429 and 503 always (the server did
 * not act), connection failures only for idempotent methods (the request may have been done).
 */

/** Methods safe to send twice. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** Statuses retried for any method: the server refused before doing anything. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** How retries back off. */
export interface RetryPolicy {
  /** Retries after the first attempt (default 2). */
  maxRetries: number;
  /** The first backoff, doubled on each retry (default 500 ms). */
  baseDelayMs: number;
  /** The longest backoff (default 8 s); a server's `Retry-After` may ask for longer, up to `maxRetryAfterMs`. */
  maxDelayMs: number;
  /** The longest `Retry-After` honoured (default 60 s); longer ones are not retried. */
  maxRetryAfterMs: number;
}

/** The default policy. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 2,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

/**
 * The wait before retry number `attempt` (1-based): the server's `Retry-After` when it gave
 * one, else exponential backoff with full jitter — a random delay in [d/2, d] with
 * d = min(maxDelayMs, baseDelayMs · 2^(attempt-1)).
 */
export function backoffDelayMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterSeconds: number | null,
  random: () => number = Math.random,
): number {
  if (retryAfterSeconds !== null) return Math.round(retryAfterSeconds * 1000);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
