import type { HolderInfo, LockInfo } from '@deadbolt/core';

/** A holder as `--json` prints it. There is no token: the CLI never prints one. */
export interface HolderJson {
  /** The owner label it acquired with (by default `host:pid`), null without one. */
  owner: string | null;
  /** Permits it holds: 1 for a mutex, up to the limit for a semaphore or a writer. */
  weight: number;
  /** Milliseconds left on its lease, by the backend's clock. */
  ttlMs: number;
}

/** A locked key as `--json` prints it: `inspect`'s output, each item of `list`'s array. */
export interface LockJson {
  key: string;
  /** Its holders now, in the backend's order. Never empty. */
  holders: HolderJson[];
  /** The last fence granted on the key. */
  fence: number;
  /** Waiters with a place in the key's queue; null for a backend without queues. */
  queued: number | null;
}

/** One line of `watch --json`: what the key looked like at one moment. */
export interface WatchJson {
  /** When the backend was asked, by this machine's clock (ISO 8601). */
  at: string;
  key: string;
  /** Null while nobody holds the key. */
  lock: LockJson | null;
}

/** What `release --force --json` prints. */
export interface ReleaseJson {
  key: string;
  /** The holders this command released. */
  released: HolderJson[];
  /** Holders it found whose lease ended, or who released, before it could release them. */
  ended: HolderJson[];
}

/** `info` as `--json` prints it: a copy that leaves the tokens out. */
export function lockJson(info: LockInfo): LockJson {
  return {
    key: info.key,
    holders: info.holders.map(holderJson),
    fence: info.fence,
    queued: info.queued ?? null,
  };
}

/** `holder` as `--json` prints it, without its token. */
export function holderJson(holder: HolderInfo): HolderJson {
  return { owner: holder.owner ?? null, weight: holder.weight, ttlMs: holder.ttlMs };
}

/** One JSON document on a line of its own. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** `list`'s table: one row per key. */
export function listTable(locks: readonly LockJson[]): string {
  const rows = locks.map((lock) => [
    printable(lock.key),
    String(lock.holders.length),
    owners(lock.holders),
    String(lock.holders.reduce((sum, holder) => sum + holder.weight, 0)),
    ttlRange(lock.holders),
    String(lock.fence),
    queued(lock),
  ]);
  return table([['KEY', 'HOLDERS', 'OWNERS', 'WEIGHT', 'TTL LEFT', 'FENCE', 'QUEUED'], ...rows]);
}

/** `inspect`'s (and `watch`'s) view of one key: the key's fence and queue, then its holders. */
export function lockView(lock: LockJson): string {
  const facts = table([
    ['key', printable(lock.key)],
    ['fence', String(lock.fence)],
    ['queued', queued(lock)],
  ]);
  const holders = table([
    ['OWNER', 'WEIGHT', 'TTL LEFT'],
    ...lock.holders.map((holder) => [
      holder.owner === null ? '-' : printable(holder.owner),
      String(holder.weight),
      duration(holder.ttlMs),
    ]),
  ]);
  return `${facts}\n${holders}`;
}

/** `ms` for people: `850ms`, `27.1s`, `4m03s`, `2h05m`. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m${pad2(seconds % 60)}s`;
  return `${Math.floor(seconds / 3_600)}h${pad2(Math.floor(seconds / 60) % 60)}m`;
}

/**
 * `text` safe to print on a terminal: keys and owners are data of any content, and a control
 * character (an escape sequence, a line break) or a bidirectional override in one must neither
 * drive the operator's terminal nor break the table. Each becomes a `\x..` or `\u{..}` escape.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    const code = char.codePointAt(0) as number;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** Control characters, line and paragraph separators, and the marks that reorder text. */
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}\p{Bidi_Control}]/gu;

/** Rows as aligned columns, two spaces apart, without trailing spaces. */
function table(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, width(cell));
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          column === row.length - 1 ? cell : cell + ' '.repeat((widths[column] ?? 0) - width(cell)),
        )
        .join('  '),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** Columns a cell takes: one per code point (wide characters misalign; JSON is exact). */
function width(cell: string): number {
  return [...cell].length;
}

function owners(holders: readonly HolderJson[]): string {
  const labels = new Set(holders.map((holder) => holder.owner ?? '-'));
  return [...labels].map(printable).join(',');
}

function ttlRange(holders: readonly HolderJson[]): string {
  const ttls = holders.map((holder) => holder.ttlMs);
  const [least, most] = [Math.min(...ttls), Math.max(...ttls)];
  return duration(least) === duration(most)
    ? duration(least)
    : `${duration(least)}-${duration(most)}`;
}

function queued(lock: LockJson): string {
  return lock.queued === null ? '-' : String(lock.queued);
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}
