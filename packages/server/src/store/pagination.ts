import { type SelectQueryBuilder, sql } from 'kysely';
import { apiError } from '../errors.js';

/** Default and largest page sizes for every list. */
export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

/** What a list request asks for: `?limit=&cursor=`. */
export interface PageRequest {
  limit?: number | undefined;
  cursor?: string | null | undefined;
}

/** One page of a list, as every list route answers. */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** The position after which the next page starts: the last row's (created_at, id). */
export interface CursorPosition {
  createdAt: string;
  id: string;
}

/** Encodes a position as an opaque cursor (base64url of JSON). */
export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

/** Decodes a cursor; a malformed one is a 400 VALIDATION_ERROR on `cursor`. */
export function decodeCursor(cursor: string): CursorPosition {
  try {
    if (!/^[A-Za-z0-9_-]{1,1024}$/.test(cursor)) throw new Error('not base64url');
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((p) => typeof p === 'string')) {
      return { createdAt: parsed[0] as string, id: parsed[1] as string };
    }
  } catch {
    // fall through to the validation error
  }
  throw apiError('VALIDATION_ERROR', { fields: [{ path: '/cursor', message: 'is not a valid cursor' }] });
}

/** The page size to use: default 50, clamped to 1..500. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE_LIMIT;
  return Math.min(MAX_PAGE_LIMIT, Math.max(1, Math.trunc(limit)));
}

/** Options for `paginate`. */
export interface PaginateOptions {
  /** Column with the creation time (default `created_at`), qualified if the query joins. */
  createdAtColumn?: string;
  /** Unique tie-breaker column (default `id`). */
  idColumn?: string;
  /** `desc` (default, newest first) or `asc`. */
  order?: 'asc' | 'desc';
}

/**
 * Runs `query` as one keyset-paginated page ordered by (created_at, id). The selected rows
 * must include `created_at` and `id`. Fetches one row more than the limit to know whether a
 * next page exists. Same SQL on SQLite and PostgreSQL.
 */
export async function paginate<DB, TB extends keyof DB, O extends { created_at: string; id: string }>(
  query: SelectQueryBuilder<DB, TB, O>,
  page: PageRequest,
  options: PaginateOptions = {},
): Promise<Page<O>> {
  const limit = pageLimit(page.limit);
  const createdAt = sql.ref(options.createdAtColumn ?? 'created_at');
  const id = sql.ref(options.idColumn ?? 'id');
  const desc = (options.order ?? 'desc') === 'desc';
  let q = query;
  if (page.cursor) {
    const after = decodeCursor(page.cursor);
    q = desc
      ? q.where(
          sql<boolean>`(${createdAt} < ${after.createdAt} or (${createdAt} = ${after.createdAt} and ${id} < ${after.id}))`,
        )
      : q.where(
          sql<boolean>`(${createdAt} > ${after.createdAt} or (${createdAt} = ${after.createdAt} and ${id} > ${after.id}))`,
        );
  }
  const direction = desc ? sql`desc` : sql`asc`;
  const rows = await q
    .orderBy(sql`${createdAt} ${direction}`)
    .orderBy(sql`${id} ${direction}`)
    .limit(limit + 1)
    .execute();
  return toPage(rows, limit);
}

/** A page from `limit + 1` rows ordered by (created_at, id): the extra row means a next page. */
export function toPage<T extends { created_at: string; id: string }>(rows: T[], limit: number): Page<T> {
  const data = rows.slice(0, limit);
  const last = data[data.length - 1];
  return {
    data,
    next_cursor:
      rows.length > limit && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
  };
}
