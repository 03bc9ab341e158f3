import { RedisProcess, sendCommand, waitFor } from './processes.js';
import { findExecutable, findRedisServerBinary } from './redis.js';
import { RespError, type RespValue, sendCommands } from './resp.js';

/** Options of {@link startRedisSentinel}. */
export interface StartRedisSentinelOptions {
  /**
   * The name the sentinels monitor the master under, which clients ask them for.
   * @default 'deadbolt'
   */
  masterName?: string;
  /**
   * How long the master may be unreachable before a sentinel thinks it down, in ms; two of the
   * three sentinels must agree before they fail it over.
   * @default 1000
   */
  downAfterMs?: number;
}

/** A `host`/`port` pair, as clients take sentinel addresses. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** One data node (the master or a replica) of a {@link RedisSentinelDeployment}. */
export interface RedisSentinelNode extends RedisAddress {
  /** SIGKILL the node, as in a crash; it stays down. */
  kill(): Promise<void>;
  /** Whether the node is alive (not killed). */
  readonly running: boolean;
  /** Sends one command to this node and resolves the decoded reply (rejects on an error reply). */
  call(...args: string[]): Promise<RespValue>;
}

/** A master, its replica and three sentinels watching them, on loopback ports, for tests. */
export interface RedisSentinelDeployment extends AsyncDisposable {
  /** The name the sentinels know the master by (`name` in ioredis, node-redis `createSentinel`). */
  readonly masterName: string;
  /** Where the sentinels listen: what a client is given to find the master. */
  readonly sentinels: readonly RedisAddress[];
  /**
   * `redis-sentinel://host:port,host:port,host:port/<masterName>`: the sentinels and the name in
   * one string, for suites that pass a deployment around as a URL. No client library reads it.
   */
  readonly url: string;
  /** The data nodes, master and replica, in the order they started (the first was the master). */
  readonly nodes: readonly RedisSentinelNode[];
  /** The node the sentinels name as master now. */
  master(): Promise<RedisSentinelNode>;
  /**
   * Asks a sentinel to fail the master over (`SENTINEL FAILOVER`) and resolves with the new
   * master once every sentinel names it, it calls itself master, and the old master has become
   * its replica.
   */
  failover(timeoutMs?: number): Promise<RedisSentinelNode>;
  /**
   * SIGKILLs the master and resolves with the replica once the sentinels have seen the master
   * down, agreed, promoted it and all name it. The old master stays down.
   */
  killMaster(timeoutMs?: number): Promise<RedisSentinelNode>;
  /** Stops every process and removes their directories; the ports are free once this resolves. */
  stop(): Promise<void>;
}

/** How long a failover may take before the harness gives up. */
const FAILOVER_TIMEOUT_MS = 60_000;

/**
 * Starts a Redis Sentinel deployment of real processes on free loopback ports: a master, a replica
 * of it and three `redis-sentinel` processes (quorum 2), each in its own temporary directory.
 * Resolves once the replica is linked and every sentinel knows the replica and the two other
 * sentinels, so a failover can start at once; `stop()` removes everything.
 *
 * @param options - see {@link StartRedisSentinelOptions}
 * @example
 * ```ts
 * const sentinel = await startRedisSentinel();
 * const client = new Redis({ sentinels: sentinel.sentinels, name: sentinel.masterName });
 * // …
 * await sentinel.failover();
 * await sentinel.stop();
 * ```
 */
export async function startRedisSentinel(
  options: StartRedisSentinelOptions = {},
): Promise<RedisSentinelDeployment> {
  const { masterName = 'deadbolt', downAfterMs = 1_000 } = options;
  const server = findRedisServerBinary();
  if (server === undefined) {
    throw new Error(
      '[deadbolt] [testing] a Sentinel deployment needs redis-server and redis-sentinel on PATH ' +
        '(apt-get install redis-server redis-sentinel, brew install redis)',
    );
  }
  // redis-sentinel is redis-server in sentinel mode; without the link the flag does the same.
  const sentinelBinary = findExecutable('redis-sentinel');
  const sentinelArgs = sentinelBinary === undefined ? ['--sentinel'] : [];
  // No delay before a full sync: a replica (and an old master after a failover) links at once.
  const dataArgs = ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'];
  const started: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((process) => process.stop()));
  };
  try {
    const master = await RedisProcess.start(server, { args: dataArgs });
    started.push(master);
    const replica = await RedisProcess.start(server, {
      args: [...dataArgs, '--replicaof', '127.0.0.1', String(master.port)],
    });
    started.push(replica);
    const config = [
      `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
      `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n');
    const sentinels = await Promise.all(
      [0, 1, 2].map(() =>
        RedisProcess.start(sentinelBinary ?? server, { args: sentinelArgs, config }),
      ),
    );
    started.push(...sentinels);
    const deployment = deploymentOf(masterName, [master, replica], sentinels, stop);
    await waitFor(
      'the replica to link and the sentinels to know it and each other',
      async () => {
        const link = await field(replica.port, ['INFO', 'replication'], 'master_link_status');
        if (link !== 'up') return false;
        for (const sentinel of sentinels) {
          const known = pairs(await call(sentinel.port, ['SENTINEL', 'MASTER', masterName]));
          if (known['num-other-sentinels'] !== '2' || known['num-slaves'] !== '1') return false;
          const replicas = (await call(sentinel.port, [
            'SENTINEL',
            'REPLICAS',
            masterName,
          ])) as RespValue[];
          const linked = replicas.map((entry) => pairs(entry));
          if (!linked.some((entry) => entry['master-link-status'] === 'ok')) return false;
          if (linked.some((entry) => /s_down|disconnected/.test(entry.flags ?? ''))) return false;
        }
        return true;
      },
      30_000,
    );
    return deployment;
  } catch (error) {
    await stop();
    throw error;
  }
}

function deploymentOf(
  masterName: string,
  data: readonly RedisProcess[],
  sentinelProcesses: readonly RedisProcess[],
  stop: () => Promise<void>,
): RedisSentinelDeployment {
  const host = '127.0.0.1';
  const nodes: RedisSentinelNode[] = data.map((process) => ({
    host,
    port: process.port,
    kill: () => process.kill(),
    get running() {
      return process.running;
    },
    call: (...args: string[]) => call(process.port, args),
  }));
  const sentinels = sentinelProcesses.map((process) => ({ host, port: process.port }));
  const nodeAt = (port: number) => {
    const node = nodes.find((candidate) => candidate.port === port);
    if (node === undefined) throw new Error(`[deadbolt] [testing] no data node on port ${port}`);
    return node;
  };
  /** The master's port as each live sentinel names it. */
  const named = async () =>
    Promise.all(
      sentinelProcesses.map(async (sentinel) => {
        const reply = (await call(sentinel.port, [
          'SENTINEL',
          'GET-MASTER-ADDR-BY-NAME',
          masterName,
        ])) as string[];
        return Number(reply[1]);
      }),
    );
  const role = async (node: RedisSentinelNode) =>
    String(((await node.call('ROLE')) as string[])[0]);
  /** Resolves with the new master once every sentinel names a node other than `old`, promoted. */
  const promotedOtherThan = async (old: RedisSentinelNode, timeoutMs: number) => {
    let promoted: RedisSentinelNode | undefined;
    await waitFor(
      `the sentinels to promote a new master instead of port ${old.port}`,
      async () => {
        const ports = new Set(await named());
        const [port] = ports;
        if (ports.size !== 1 || port === undefined || port === old.port) return false;
        promoted = nodeAt(port);
        return (await role(promoted)) === 'master';
      },
      timeoutMs,
    );
    return promoted as RedisSentinelNode;
  };
  const master = async () => {
    const [port] = await named();
    return nodeAt(port as number);
  };
  return {
    masterName,
    sentinels,
    url: `redis-sentinel://${sentinels.map(({ port }) => `${host}:${port}`).join(',')}/${masterName}`,
    nodes,
    master,
    failover: async (timeoutMs = FAILOVER_TIMEOUT_MS) => {
      const old = await master();
      const [first] = sentinelProcesses;
      await sendCommand(first?.port as number, ['SENTINEL', 'FAILOVER', masterName]);
      const promoted = await promotedOtherThan(old, timeoutMs);
      await waitFor(
        `the old master on port ${old.port} to replicate the new one`,
        async () =>
          (await role(old)) === 'slave' &&
          (await field(old.port, ['INFO', 'replication'], 'master_link_status')) === 'up',
        timeoutMs,
      );
      return promoted;
    },
    killMaster: async (timeoutMs = FAILOVER_TIMEOUT_MS) => {
      const old = await master();
      await old.kill();
      return promotedOtherThan(old, timeoutMs);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** One command to the process on `port`, decoded; rejects on an error reply. */
async function call(port: number, args: readonly string[]): Promise<RespValue> {
  const [reply] = await sendCommands({ host: '127.0.0.1', port }, [args]);
  if (reply === undefined) throw new Error('[deadbolt] [testing] no reply');
  if (reply.value instanceof RespError) throw reply.value;
  return reply.value;
}

/** `name:value` out of an `INFO` reply. */
async function field(port: number, args: readonly string[], name: string) {
  const info = String(await call(port, args));
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** A flat `[name, value, name, value, …]` reply as an object. */
function pairs(reply: RespValue): Record<string, string> {
  const list = Array.isArray(reply) ? reply : [];
  const found: Record<string, string> = {};
  for (let index = 0; index + 1 < list.length; index += 2) {
    found[String(list[index])] = String(list[index + 1]);
  }
  return found;
}
