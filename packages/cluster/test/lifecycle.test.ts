import { fileURLToPath } from 'node:url';
import { type RedisCluster, runScriptToExit, startRedisCluster } from '@deadbolt/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const QUIT = fileURLToPath(new URL('./fixtures/quit.mjs', import.meta.url));

/**
 * Only so that a process that never exits fails the test instead of hanging it: a script that
 * exits by itself took up to 25 s beside a second CI run.
 */
const SAFETY_MS = 90_000;

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
});
afterAll(async () => {
  await cluster?.stop();
});

describe.each([
  ['ioredis', ['quit', 'disconnect']],
  ['node-redis', ['quit', 'close', 'destroy']],
])('a %s cluster client', (library, ends) => {
  it.each(ends)(
    'lets the process exit after %s() once a waiter used wake-ups, failing later calls with BackendError',
    { timeout: SAFETY_MS + 10_000 },
    async (end) => {
      const [{ host, port }] = cluster.rootNodes as [{ host: string; port: number }];
      const { code, output } = await runScriptToExit(QUIT, [host, String(port), library, end], {
        safetyMs: SAFETY_MS,
      });
      expect(output).toContain('waited');
      expect(output).toMatch(
        /pending wait: BackendError \[deadbolt\] \[cluster\] waiting for "other": the client was closed/,
      );
      expect(output).toMatch(/acquire: BackendError \[deadbolt\] \[cluster\] acquire failed/);
      expect(output).toMatch(
        /wait: BackendError \[deadbolt\] \[cluster\] waiting for "report": the client is closed/,
      );
      // Exited by itself, not killed at the safety timeout.
      expect(code).toBe(0);
    },
  );
});
