import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type RedisServer, startRedis } from '@deadbolt/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const QUIT = fileURLToPath(new URL('./fixtures/quit.mjs', import.meta.url));

/** Only so that a process that never exits fails the test instead of hanging it. */
const SAFETY_MS = 30_000;

/** Runs `node script ...args` to its end: its exit code (null if still running after SAFETY_MS) and output. */
function run(script: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve) => {
    const safety = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ code: null, output });
    }, SAFETY_MS);
    child.once('exit', (code) => {
      clearTimeout(safety);
      resolve({ code, output });
    });
  });
}

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
      const { code, output } = await run(QUIT, [server.url, end, module]);
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
