import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { RedisProcess, sendCommand, waitFor } from './processes.js';
import { findRedisServerBinary } from './redis.js';

const run = promisify(execFile);

/** Options of {@link startRedisCluster}. */
export interface StartRedisClusterOptions {
  /** Masters, each owning a share of the 16 384 slots. @default 3 */
  masters?: number;
  /** Replicas per master, which take over when it fails. @default 1 */
  replicasPerMaster?: number;
  /** How long a node may be unreachable before the cluster fails it over, in ms. @default 2000 */
  nodeTimeoutMs?: number;
}

/** One node of a {@link RedisCluster}. */
export interface RedisClusterNode {
  readonly host: string;
  readonly port: number;
  /** SIGKILL the node, as in a crash. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Start the node again on its port; it rejoins the cluster from its nodes.conf. */
  restart(): Promise<void>;
  /** Sends one command to this node and resolves the raw RESP reply. */
  command(...args: string[]): Promise<string>;
  /** Whether the node currently calls itself a master. */
  isMaster(): Promise<boolean>;
}

/** A real Redis Cluster on loopback ports, for tests. */
export interface RedisCluster extends AsyncDisposable {
  readonly nodes: readonly RedisClusterNode[];
  /** `{ host, port }` of every node, as cluster clients take their root nodes. */
  readonly rootNodes: readonly { host: string; port: number }[];
  /** The nodes that are masters now. */
  masters(): Promise<RedisClusterNode[]>;
  /** Resolves once every live node reports `cluster_state:ok` and agrees on the masters. */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster of real `redis-server` processes on free loopback ports, assigns the
 * slots (with `redis-cli --cluster create`), and waits until it is healthy.
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
 * const client = new Cluster(cluster.rootNodes);
 * ```
 */
export async function startRedisCluster(
  options: StartRedisClusterOptions = {},
): Promise<RedisCluster> {
  const { masters = 3, replicasPerMaster = 1, nodeTimeoutMs = 2_000 } = options;
  const binary = findRedisServerBinary();
  if (binary === undefined) {
    throw new Error('[deadbolt] [testing] a cluster needs redis-server and redis-cli on PATH');
  }
  const args = [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    // A replica may take over however stale it is: tests kill masters on purpose.
    '--cluster-replica-validity-factor',
    '0',
  ];
  const processes = await Promise.all(
    Array.from({ length: masters * (1 + replicasPerMaster) }, () =>
      RedisProcess.start(binary, { args }),
    ),
  );
  const cluster = clusterOf(processes);
  try {
    await run(join(dirname(binary), 'redis-cli'), [
      '--cluster',
      'create',
      ...processes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      String(replicasPerMaster),
      '--cluster-yes',
    ]);
    await cluster.waitUntilHealthy(30_000);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

function clusterOf(processes: readonly RedisProcess[]): RedisCluster {
  const nodes: RedisClusterNode[] = processes.map((node) => ({
    host: '127.0.0.1',
    port: node.port,
    kill: () => node.kill(),
    pause: async () => node.pause(),
    resume: async () => node.resume(),
    restart: () => node.restart(),
    command: (...args: string[]) => sendCommand(node.port, args),
    isMaster: async () => (await sendCommand(node.port, ['ROLE'])).includes('master'),
  }));
  const live = () => processes.filter((node) => node.running);
  const stop = async () => {
    await Promise.all(processes.map((node) => node.stop()));
  };
  return {
    nodes,
    rootNodes: nodes.map(({ host, port }) => ({ host, port })),
    masters: async () => {
      const roles = await Promise.all(nodes.map((node) => node.isMaster().catch(() => false)));
      return nodes.filter((_, index) => roles[index]);
    },
    waitUntilHealthy: (timeoutMs = 30_000) =>
      waitFor(
        'the cluster to be healthy',
        async () => {
          for (const node of live()) {
            const info = await sendCommand(node.port, ['CLUSTER', 'INFO']);
            if (!info.includes('cluster_state:ok')) return false;
            // Every slot must be served by a reachable master.
            if (!info.includes('cluster_slots_ok:16384')) return false;
          }
          return true;
        },
        timeoutMs,
      ),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
