import { BackendError } from '@deadbolt/core';
import type { RedisConnection } from './backend.js';
import { toText } from './replies.js';
import { runScript, scripts } from './scripts.js';

/** What a backend does about a server that may evict its locks; see `RedisBackendOptions`. */
export type EvictionCheck = 'error' | 'warn' | 'off';

/** What the check needs of an adapter's connection. */
type Servers = Pick<RedisConnection, 'name' | 'transport' | 'servers'>;

/** One server's memory limit and eviction policy. */
interface MemorySettings {
  maxmemory: number;
  policy: string;
}

/** One server's answer: its settings, or why it gave none. */
type MemoryReport = MemorySettings | { unknown: string };

/**
 * Asks, once per backend, whether the server may evict keys when memory runs out (`maxmemory`
 * above 0 and a `maxmemory-policy` other than `noeviction`). A lock's hash always has an expiry
 * (it outlives the last lease so that fences never repeat), so `volatile-*` policies evict it as
 * readily as `allkeys-*` ones, and a lock that is still held is then granted to someone else.
 */
export class EvictionGuard {
  readonly #mode: EvictionCheck;
  readonly #target: Servers;
  #passed: boolean;
  #checking: Promise<void> | undefined;

  constructor(mode: EvictionCheck, target: Servers) {
    this.#mode = mode;
    this.#target = target;
    this.#passed = mode === 'off';
  }

  /** Whether locking may go on without asking (again): the check passed, or is off. */
  get passed(): boolean {
    return this.#passed;
  }

  /**
   * Runs the check on the server of `lockKey`, or on every server when there are several, once
   * for all concurrent callers. Rejects with `BackendError` when the server evicts and the mode is `'error'`, or
   * when the check could not reach the server; the next call asks again either way.
   */
  check(lockKey: string): Promise<void> {
    this.#checking ??= this.#run(lockKey).finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #run(lockKey: string): Promise<void> {
    const reports = (await this.#ask(lockKey)).map(decode);
    const name = this.#target.name;
    const evicting = reports.filter(evicts);
    if (evicting.length > 0) {
      const found = describeEvicting(evicting, reports.length);
      if (this.#mode === 'error') {
        throw new BackendError(
          `[${name}] refusing to lock on a server that may evict a held lock when memory runs out: set maxmemory-policy noeviction (or keep locks on a Redis of their own that has it), or pass { evictionCheck: 'warn' } to accept the risk`,
          found,
        );
      }
      warn(
        `[deadbolt] [${name}] the server may evict a held lock when memory runs out (${found}), and another process would then acquire it while it is held: set maxmemory-policy noeviction, or keep locks on a Redis of their own that has it`,
        'DEADBOLT_EVICTION',
      );
    }
    const unknown = reports.flatMap((report) => ('unknown' in report ? [report.unknown] : []));
    if (unknown.length > 0) {
      warn(
        `[deadbolt] [${name}] could not check whether the server may evict a held lock (${unknown[0]}): make sure its maxmemory-policy is noeviction, then pass { evictionCheck: 'off' } to skip this check`,
        'DEADBOLT_EVICTION_UNCHECKED',
      );
    }
    this.#passed = true;
  }

  /** The raw reports of the server of `lockKey`, or of every server when there are several. */
  async #ask(lockKey: string): Promise<unknown[]> {
    const { transport, servers, name } = this.#target;
    try {
      const first = await runScript(transport, scripts.evictionPolicy, [lockKey], []);
      // Listed only now: a cluster client knows its masters once a first command went through.
      const every = servers === undefined ? [] : await servers();
      if (every.length === 0) return [first];
      return await Promise.all(
        every.map((server) => runScript(server.transport, scripts.evictionPolicy, [], [])),
      );
    } catch (error) {
      throw new BackendError(`[${name}] checking the server's maxmemory-policy failed`, error);
    }
  }
}

function evicts(report: MemoryReport): report is MemorySettings {
  return 'policy' in report && report.maxmemory > 0 && report.policy !== 'noeviction';
}

/** The reply of `eviction-policy.lua`, whose strings may arrive as bytes. */
function decode(reply: unknown): MemoryReport {
  const [first, second] = Array.isArray(reply) ? reply.map(toText) : [];
  if (first === 'refused') return { unknown: `INFO was refused: ${second}` };
  const maxmemory = Number(first);
  if (!first || !second || !Number.isSafeInteger(maxmemory)) {
    return { unknown: 'INFO memory does not report maxmemory and maxmemory_policy' };
  }
  return { maxmemory, policy: second };
}

/** `maxmemory-policy is volatile-lru with maxmemory 3145728`, and on how many servers. */
function describeEvicting(evicting: readonly MemorySettings[], servers: number): string {
  const settings = new Set(
    evicting.map(
      (report) => `maxmemory-policy is ${report.policy} with maxmemory ${report.maxmemory}`,
    ),
  );
  const where = servers > 1 ? ` on ${evicting.length} of ${servers} servers` : '';
  return `${[...settings].join('; ')}${where}`;
}

function warn(message: string, code: string): void {
  process.emitWarning(message, { type: 'DeadboltWarning', code });
}
