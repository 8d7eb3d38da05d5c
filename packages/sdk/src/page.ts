/** One page of a list, which also iterates every item from here to the last page. */
export class Page<T> implements AsyncIterable<T> {
  constructor(
    /** The items of this page. */
    readonly data: T[],
    /** The cursor of the next page, or null on the last one. */
    readonly nextCursor: string | null,
    private readonly fetchPage: (cursor: string) => Promise<Page<T>>,
  ) {}

  /** True when there is a page after this one. */
  get hasMore(): boolean {
    return this.nextCursor !== null;
  }

  /** The next page, or null on the last one. */
  async nextPage(): Promise<Page<T> | null> {
    return this.nextCursor === null ? null : this.fetchPage(this.nextCursor);
  }

  /** Every item of this page and of the pages after it, fetched as the loop gets to them. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page: Page<T> | null = this;
    while (page) {
      yield* page.data;
      page = await page.nextPage();
    }
  }
}

/** A list answer of the API. */
export interface ListAnswer<R> {
  data: R[];
  next_cursor?: string | null;
}

/** Fetches the first page with `load(cursor?)` and maps each item with `wrap`. */
export async function fetchPage<R, T>(
  load: (cursor: string | undefined) => Promise<ListAnswer<R>>,
  wrap: (item: R) => T,
  cursor?: string,
): Promise<Page<T>> {
  const answer = await load(cursor);
  return new Page(answer.data.map(wrap), answer.next_cursor ?? null, (next) => fetchPage(load, wrap, next));
}
