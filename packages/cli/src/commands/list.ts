import type { LockInfo } from '@deadbolt/core';
import type { CommandContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { jsonLine, listTable, lockJson } from '../format.js';

/** Keys asked of the backend per page: SCAN's COUNT on Redis, rows on PostgreSQL. */
const PAGE_SIZE = 1_000;
/** Keys inspected at once. */
const CONCURRENCY = 8;

/**
 * `deadbolt list [pattern]`: pages through the keys locked now, then inspects each. A key freed
 * between the two is left out.
 */
export async function list(
  { backend, io, json }: CommandContext,
  { pattern }: { pattern: string },
): Promise<ExitCode> {
  const keys = new Set<string>();
  let cursor: string | null = null;
  do {
    const page = await backend.listing.list({
      match: pattern,
      count: PAGE_SIZE,
      ...(cursor !== null && { cursor }),
    });
    // A key may show on two pages (on two masters of a Cluster during a migration).
    for (const key of page.keys) keys.add(key);
    cursor = page.cursor;
  } while (cursor !== null);

  const pending = [...keys];
  const found: LockInfo[] = [];
  const inspectSome = async () => {
    for (let key = pending.pop(); key !== undefined; key = pending.pop()) {
      const info = await backend.inspection.inspect({ key });
      if (info !== null) found.push(info);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, inspectSome));

  const locks = found.map(lockJson).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (json) io.stdout.write(jsonLine(locks));
  else if (locks.length === 0) io.stdout.write(`no locked keys match ${pattern}\n`);
  else io.stdout.write(listTable(locks));
  return ExitCode.ok;
}
