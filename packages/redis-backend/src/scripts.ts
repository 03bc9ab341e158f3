import { createHash } from 'node:crypto';
import { luaSources } from './lua.generated.js';

/** One Lua script, with its SHA1 computed once. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

/**
 * The raw calls an adapter supplies so the scripts can run on its client. Both reject with the
 * client's own error; a script missing from the server's cache is an error whose message starts
 * with `NOSCRIPT`.
 */
export interface ScriptTransport {
  /** `EVALSHA sha numkeys ...keys ...args` */
  evalsha(sha: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /** `EVAL source numkeys ...keys ...args` (which also loads the script into the cache) */
  eval(source: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
}

// The .lua files are inlined at build time (scripts/generate-lua.mjs): nothing is read from disk at
// run time, so bundled apps work.
const library = luaSources.lib;

/** `lua/<name>.lua` behind the shared library. */
function loadScript(name: Exclude<keyof typeof luaSources, 'lib'>): LuaScript {
  const source = `${library}\n${luaSources[name]}`;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Every deadbolt script, one file each under `lua/`. */
export const scripts = {
  acquire: loadScript('acquire'),
  extend: loadScript('extend'),
  release: loadScript('release'),
  inspect: loadScript('inspect'),
  list: loadScript('list'),
  advanceFence: loadScript('advance-fence'),
  evictionPolicy: loadScript('eviction-policy'),
} as const;

/**
 * Runs `script` by its SHA1 and, when the server does not have it (after `SCRIPT FLUSH`, a restart
 * or a failover), by its source, which reloads it for the next call.
 */
export function runScript(
  transport: ScriptTransport,
  script: LuaScript,
  keys: readonly string[],
  args: readonly string[],
): Promise<unknown> {
  let sent: Promise<unknown>;
  try {
    sent = transport.evalsha(script.sha, keys, args);
  } catch (error) {
    // A transport that throws instead of rejecting still yields a rejected promise.
    return Promise.reject(error);
  }
  return sent.catch((error: unknown) => {
    if (!isNoScriptError(error)) throw error;
    return transport.eval(script.source, keys, args);
  });
}

function isNoScriptError(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
