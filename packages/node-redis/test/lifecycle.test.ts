import { fileURLToPath } from 'node:url';
import { type RedisServer, runScriptToExit, startRedis } from '@deadbolt/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const QUIT = fileURLToPath(new URL('./fixtures/quit.mjs', import.meta.url));

/**
 * Only so that a process that never exits fails the test instead of hanging it: a script that
 * exits by itself took up to 25 s beside a second CI run.
 */
const SAFETY_MS = 90_000;

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

describe.each(['redis', 'redis5'])('node-redis from %s', (module) => {
  it.each(['quit', 'close', 'destroy'])(
    'lets the process exit after client.%s() once a waiter used wake-ups, failing later calls with BackendError',
    { timeout: SAFETY_MS + 10_000 },
    async (end) => {
      const { code, output } = await runScriptToExit(QUIT, [server.url, end, module], {
        safetyMs: SAFETY_MS,
      });
      expect(output).toContain('waited');
      expect(output).toMatch(
        /pending wait: BackendError \[deadbolt\] \[node-redis\] waiting for "other": the client was closed/,
      );
      expect(output).toMatch(/acquire: BackendError \[deadbolt\] \[node-redis\] acquire failed/);
      expect(output).toMatch(
        /wait: BackendError \[deadbolt\] \[node-redis\] waiting for "report": the client is closed/,
      );
      // Exited by itself, not killed at the safety timeout.
      expect(code).toBe(0);
    },
  );
});
