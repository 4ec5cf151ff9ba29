/** Paged lists (`limit`, `cursor`, `nextCursor`): one page's path, and every page in turn. */

export interface PageOptions {
  limit?: number;
  cursor?: string;
}

/** `path` with the page's query string. */
export function pagePath(path: string, options: PageOptions): string {
  const query = new URLSearchParams();
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  return query.size > 0 ? `${path}?${query.toString()}` : path;
}

/** The items of every page, following `nextCursor` from the first page (of `pageSize` each). */
export async function allPages<Page extends { nextCursor: string | null }, Item>(
  read: (options: PageOptions) => Promise<Page>,
  items: (page: Page) => Item[],
  pageSize?: number,
): Promise<Item[]> {
  const all: Item[] = [];
  let cursor: string | undefined;
  do {
    const page = await read({
      ...(pageSize !== undefined ? { limit: pageSize } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    all.push(...items(page));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return all;
}
