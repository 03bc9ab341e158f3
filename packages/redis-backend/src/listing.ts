import {
  globToRegExp,
  InvalidArgumentError,
  type ListPage,
  type ListRequest,
} from '@deadbolt/core';
import { hashTag, keyOfTag } from './keys.js';
import { array, toText } from './replies.js';
import { runScript, type ScriptTransport, scripts } from './scripts.js';

/** One server that stores locks, and how to run a script on it alone. */
export interface LockServer {
  /** Where it is (`host:port`): a listing's cursor names the server it goes on with. */
  readonly address: string;
  /** Runs a script (without keys) on this server. */
  readonly transport: ScriptTransport;
}

/** What a listing reads: the servers, and the start every lock's name has on them. */
export interface ListingSource {
  /**
   * `${keyPrefix}${prefix}:{`: the client's own key prefix (which it adds to the KEYS of a script,
   * but which SCAN returns as part of the name), then the backend's prefix and the hash tag's `{`.
   */
  readonly namePrefix: string;
  /** Every server that stores locks; a single server has the address `''`. */
  servers(): Promise<readonly LockServer[]>;
}

/** The most one page asks SCAN to look at, so that no page holds up the server for long. */
const MAX_SCAN_COUNT = 1_000;

/**
 * One page of locked keys: one step of SCAN on one server, in the order of the servers'
 * addresses, through `list.lua`, which keeps the names with a live holder or queue place. The
 * glob's literal start narrows SCAN's MATCH; the rest of it is matched here, on the decoded key.
 * The cursor is `<scan cursor>` on a single server and `<scan cursor>@<address>` on several.
 */
export async function listPage(
  source: ListingSource,
  request: ListRequest,
  at: ListCursor,
): Promise<ListPage> {
  const { match = '*', count = 100 } = request;
  const servers = [...(await source.servers())].sort((a, b) => compare(a.address, b.address));
  // A server that is gone (a failed-over master) is passed: its keys now live on another one.
  const index = servers.findIndex((server) => compare(server.address, at.address) >= 0);
  const server = servers[index];
  if (server === undefined) return { keys: [], cursor: null };
  const scan = server.address === at.address ? at.scan : '0';
  const pattern = `${escapeGlob(source.namePrefix + hashTag(literalStart(match)))}*`;
  const reply = await runScript(
    server.transport,
    scripts.list,
    [],
    [pattern, scan, String(Math.min(count, MAX_SCAN_COUNT))],
  );
  const [next, ...names] = array(reply, 'list').map(toText);
  const matches = globToRegExp(match);
  const keys = new Set<string>();
  for (const name of names) {
    const key = name.endsWith('}') ? keyOfTag(name.slice(source.namePrefix.length, -1)) : undefined;
    if (key !== undefined && matches.test(key)) keys.add(key);
  }
  const following = servers[index + 1];
  let cursor: string | null = null;
  if (next !== undefined && next !== '0') cursor = formatCursor(next, server.address);
  else if (following !== undefined) cursor = formatCursor('0', following.address);
  return { keys: [...keys], cursor };
}

/** Where a listing goes on: a SCAN cursor on the server of `address` (`''` for a single one). */
export interface ListCursor {
  scan: string;
  address: string;
}

/** Reads the cursor of a previous page; refuses one that no page gave, before any I/O. */
export function readCursor(cursor: string | undefined): ListCursor {
  if (cursor === undefined) return { scan: '0', address: '' };
  const at = cursor.indexOf('@');
  const scan = at === -1 ? cursor : cursor.slice(0, at);
  if (!/^\d+$/.test(scan)) {
    throw new InvalidArgumentError('request.cursor', 'expected the cursor of a previous page');
  }
  return { scan, address: at === -1 ? '' : cursor.slice(at + 1) };
}

function formatCursor(scan: string, address: string): string {
  return address === '' ? scan : `${scan}@${address}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The glob's start up to its first wildcard, unquoted: every key it matches starts with it. */
function literalStart(glob: string): string {
  let literal = '';
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index] as string;
    if (char === '*' || char === '?') break;
    literal += char === '\\' && index + 1 < glob.length ? glob[++index] : char;
  }
  return literal;
}

/** `text` as a Redis glob that matches it literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
