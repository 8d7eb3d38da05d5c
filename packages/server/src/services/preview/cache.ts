/**
 * A small map whose entries expire: what the preview proxy keeps between requests (port
 * settings, resolved credentials, checked tokens) so that a busy preview does not read the
 * store on every request. Bounded: when full, expired entries go first, then the oldest.
 *
 * Every removal bumps `epoch`: a reader notes it before reading the store and passes it to
 * `set`, which then keeps nothing when something was invalidated meanwhile (a value read before
 * a revocation committed must not be cached after it).
 */
export class ExpiringCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  readonly #max: number;
  #epoch = 0;

  constructor(max = 10_000) {
    this.#max = max;
  }

  /** The live value of `key`, or undefined (an expired entry is dropped). */
  get(key: string, nowMs = Date.now()): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until <= nowMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Bumped by every invalidation (`delete`, `deletePrefix`, `clear`). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Keeps `value` under `key` for `ttlMs`, unless an invalidation happened since `epoch`. */
  set(key: string, value: V, ttlMs: number, epoch = this.#epoch, nowMs = Date.now()): void {
    if (epoch !== this.#epoch) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) this.#prune(nowMs);
    this.#entries.set(key, { value, until: nowMs + ttlMs });
  }

  /** Drops `key`. */
  delete(key: string): void {
    this.#epoch++;
    this.#entries.delete(key);
  }

  /** Drops every entry whose key starts with `prefix`. */
  deletePrefix(prefix: string): void {
    this.#epoch++;
    for (const key of this.#entries.keys()) if (key.startsWith(prefix)) this.#entries.delete(key);
  }

  /** Drops everything. */
  clear(): void {
    this.#epoch++;
    this.#entries.clear();
  }

  /** Entries held (expired ones included until they are met). */
  get size(): number {
    return this.#entries.size;
  }

  #prune(nowMs: number): void {
    for (const [key, entry] of this.#entries) if (entry.until <= nowMs) this.#entries.delete(key);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }
}
