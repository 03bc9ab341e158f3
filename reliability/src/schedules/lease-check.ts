/**
 * Invariant (b): no client's `expiresAt` is later than the lease its backend actually holds.
 * Right after a grant or an extension, a client reads what the backend holds for its token
 * (Redis: the holder field `#<token>` of the lock hash, over a connection of its own; memory:
 * `inspect`) and judges its belief against it. Lease ends are epoch milliseconds on the one
 * machine clock that `Date.now()` and redis-server's `TIME` both read.
 */
import type { MemoryBackend } from '@deadbolt/memory';
import type { Redis } from 'ioredis';

/** What one backend (or quorum member) holds for a token. */
export type ServerLease =
  | { kind: 'lease'; end: number }
  | { kind: 'none' }
  /** The read failed: a member that is down says nothing either way. */
  | { kind: 'unknown' };

export type LeaseVerdict =
  | 'ok'
  /** The lease may have ended on its own before the read: no verdict. */
  | 'undetermined'
  | 'lease-missing-on-server'
  | 'lease-ends-earlier-on-server';

/**
 * One backend's view against a belief that the lease runs until `expiresAt`. A lease end never
 * moves earlier (only a release or its expiry remove it), so an earlier end is always a
 * violation. A missing lease is one only when the belief runs past `repliedAt`, the time the
 * read's reply came back: the server read at or before it, so a lease that ended on its own by
 * then cannot be told from one that never was.
 */
export function judgeLease(
  expiresAt: number,
  server: ServerLease,
  repliedAt: number,
): LeaseVerdict {
  switch (server.kind) {
    case 'unknown':
      return 'undetermined';
    case 'lease':
      return server.end < expiresAt ? 'lease-ends-earlier-on-server' : 'ok';
    case 'none':
      return expiresAt > repliedAt ? 'lease-missing-on-server' : 'undetermined';
  }
}

/**
 * Over several members: the belief needs `majority` of them to back it (or to be unable to say);
 * with fewer, the first violation found among the rest is the verdict.
 */
export function judgeLeases(
  expiresAt: number,
  servers: readonly ServerLease[],
  repliedAt: number,
  majority: number,
): LeaseVerdict {
  const verdicts = servers.map((server) => judgeLease(expiresAt, server, repliedAt));
  const count = (verdict: LeaseVerdict) => verdicts.filter((each) => each === verdict).length;
  if (count('ok') >= majority) return 'ok';
  if (count('ok') + count('undetermined') >= majority) return 'undetermined';
  return count('lease-ends-earlier-on-server') > 0
    ? 'lease-ends-earlier-on-server'
    : 'lease-missing-on-server';
}

/** Reads what a backend holds for one token, and describes the lock for a violation's text. */
export interface LeaseReader {
  /** Members that must back a lease: 1, or a quorum's majority. */
  readonly majority: number;
  read(key: string, token: string): Promise<LeaseRead>;
}

/** What the backend holds for a token (one entry per member), and the lock in words. */
export interface LeaseRead {
  servers: ServerLease[];
  described: string;
}

/** The lease end in a holder field's value, `<leaseEnd>[ <weight>]`. */
function leaseEnd(value: string): number {
  return Number(value.split(' ')[0]);
}

/** Reads lock hashes over `connection`, a client of its own that nothing else uses. */
export class RedisLeaseReader implements LeaseReader {
  readonly majority = 1;
  readonly #connection: Redis;
  readonly #lockKey: (key: string) => string;

  constructor(connection: Redis, lockKey: (key: string) => string) {
    this.#connection = connection;
    this.#lockKey = lockKey;
  }

  async read(key: string, token: string): Promise<LeaseRead> {
    let fields: Record<string, string>;
    try {
      fields = await this.#connection.hgetall(this.#lockKey(key));
    } catch {
      return { servers: [{ kind: 'unknown' }], described: 'the server did not answer' };
    }
    const own = fields[`#${token}`];
    const server: ServerLease =
      own === undefined ? { kind: 'none' } : { kind: 'lease', end: leaseEnd(own) };
    return { servers: [server], described: describeHash(fields, token) };
  }

  /**
   * The lock hash's fence and the names of its fields that mention `token` (its queue place, its
   * lease), found by the token alone so that a new field layout still finds them.
   */
  async tokenState(
    key: string,
    token: string,
  ): Promise<{ fence: string | undefined; fields: string[] }> {
    const fields = await this.#connection.hgetall(this.#lockKey(key));
    return {
      fence: fields.fence,
      fields: Object.keys(fields).filter((name) => name.includes(token)),
    };
  }
}

/** A quorum's members, each read over its own connection; a member that is down is `unknown`. */
export class QuorumLeaseReader implements LeaseReader {
  readonly majority: number;
  readonly #members: readonly RedisLeaseReader[];

  constructor(members: readonly RedisLeaseReader[]) {
    this.#members = members;
    this.majority = Math.floor(members.length / 2) + 1;
  }

  async read(key: string, token: string): Promise<LeaseRead> {
    const reads = await Promise.all(this.#members.map((member) => member.read(key, token)));
    return {
      servers: reads.flatMap((read) => read.servers),
      described: reads.map((read, index) => `member ${index}: ${read.described}`).join('; '),
    };
  }
}

/** The memory backend of this very process, through `inspect`. */
export class MemoryLeaseReader implements LeaseReader {
  readonly majority = 1;
  readonly #backend: MemoryBackend;

  constructor(backend: MemoryBackend) {
    this.#backend = backend;
  }

  async read(key: string, token: string): Promise<LeaseRead> {
    const info = await this.#backend.inspection.inspect({ key });
    // inspect measured the TTLs left at some instant before now: counting them from now is the
    // latest the leases can end, so a verdict of "earlier" is never a false one.
    const now = Date.now();
    const holder = info?.holders.find((each) => each.token === token);
    const server: ServerLease =
      holder === undefined ? { kind: 'none' } : { kind: 'lease', end: now + holder.ttlMs };
    const others = (info?.holders.length ?? 0) - (holder === undefined ? 0 : 1);
    return {
      servers: [server],
      described: `memory: ${holder === undefined ? 'no lease for the token' : `the token's lease has ${holder.ttlMs} ms left`}, ${others} other holders, fence ${info?.fence ?? 'unknown'}`,
    };
  }
}

/** The lock hash in words, relative to now: the token's lease, the other holders, the queue, the fence. */
function describeHash(fields: Record<string, string>, token: string): string {
  const now = Date.now();
  const own = fields[`#${token}`];
  const others: string[] = [];
  let places = 0;
  for (const [name, value] of Object.entries(fields)) {
    if (name.startsWith('#') && name !== `#${token}`) others.push(`${leaseEnd(value) - now} ms`);
    if (name.startsWith('?')) places += 1;
  }
  const lease =
    own === undefined
      ? 'no lease for the token'
      : `the token's lease ends in ${leaseEnd(own) - now} ms`;
  const holders =
    others.length === 0 ? 'no other holder' : `other holders ending in ${others.join(', ')}`;
  return `redis: ${lease}, ${holders}, ${places} queue places, fence ${fields.fence ?? 'none'}`;
}
