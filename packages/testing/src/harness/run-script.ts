import { spawn } from 'node:child_process';

/** How a script run by {@link runScriptToExit} ended. */
export interface ScriptExit {
  /** Its exit code; `null` when it was still running after `safetyMs` and was killed. */
  code: number | null;
  /** Its standard output and standard error, interleaved as they came. */
  output: string;
}

/**
 * Runs `node script ...args` until it exits by itself, for tests that a process ends when it
 * should (a backend that holds no handle open once the user's client is closed). `safetyMs` is
 * not a speed check: it only turns a process that never exits into a failed test (code `null`)
 * instead of a hung run.
 */
export function runScriptToExit(
  script: string,
  args: readonly string[] = [],
  { safetyMs = 30_000 }: { safetyMs?: number } = {},
): Promise<ScriptExit> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  return new Promise((resolve) => {
    const safety = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ code: null, output });
    }, safetyMs);
    child.once('exit', (code) => {
      clearTimeout(safety);
      resolve({ code, output });
    });
  });
}
