import { type RedisServer, startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockKey, type ScriptTransport, scripts } from '../src/index.js';
import { backendOf, transportOf, unique } from './helpers.js';

let server: RedisServer;
let client: Redis;

beforeAll(async () => {
  server = await startRedis();
  client = new Redis(server.url);
  client.on('error', () => undefined);
});

afterAll(async () => {
  client?.disconnect();
  await server?.stop();
});

/** One script call as it left for the server. */
interface SentCall {
  command: 'evalsha' | 'eval';
  script: string;
  keys: readonly string[];
  args: readonly string[];
}

/** Passes every call on to the real server and keeps a copy of what was sent. */
function recordingTransport(inner: ScriptTransport): ScriptTransport & { sent: SentCall[] } {
  const sent: SentCall[] = [];
  return {
    sent,
    evalsha: (script, keys, args) => {
      sent.push({ command: 'evalsha', script, keys, args });
      return inner.evalsha(script, keys, args);
    },
    eval: (script, keys, args) => {
      sent.push({ command: 'eval', script, keys, args });
      return inner.eval(script, keys, args);
    },
  };
}

/** Keys and tokens that would change a script if they were ever spliced into its source. */
const hostile = [
  "]]; redis.call('FLUSHALL') --[[",
  '"); redis.call("FLUSHALL"); --',
  "'..redis.call('FLUSHALL')..'",
  'line\nredis.call("FLUSHALL")\n--',
  ']==] return 0 --[==[',
  '{x}}:holders{',
];

describe('user strings never reach Lua source', () => {
  it('sends only the five fixed scripts, with keys and tokens as KEYS and ARGV', async () => {
    const transport = recordingTransport(transportOf(client));
    const prefix = unique('inject');
    const backend = backendOf(client, prefix, transport);
    const canary = unique('canary');
    await client.set(canary, 'alive');
    // Make the runner fall back to EVAL (with the source) as well as EVALSHA.
    await client.script('FLUSH');
    for (const text of hostile) {
      const request = { key: text, token: text, ttlMs: 10_000, limit: 2, weight: 1 };
      expect((await backend.acquire(request)).ok).toBe(true);
      expect(await backend.extend({ key: text, token: text, ttlMs: 10_000 })).toBe(true);
      expect(
        (await backend.inspection.inspect({ key: text }))?.holders.map((holder) => holder.token),
      ).toEqual([text]);
      await backend.fences.advance({ key: text, fence: 1 });
      expect(await backend.release({ key: text, token: text })).toBe(true);
    }
    const known = Object.values(scripts);
    expect(transport.sent.some((call) => call.command === 'eval')).toBe(true);
    for (const call of transport.sent) {
      // The script is one of the fixed ones, byte for byte: no user string is in it.
      const script = known.find(
        (s) => (call.command === 'eval' ? s.source : s.sha) === call.script,
      );
      expect(script, `an unknown script was sent: ${call.script.slice(0, 60)}`).toBeDefined();
      for (const text of hostile) expect(call.script).not.toContain(text);
      // Every key is the name of a lock, under the backend's prefix.
      const names = new Set(hostile.map((text) => lockKey(prefix, text)));
      for (const key of call.keys) expect(names.has(key), key).toBe(true);
    }
    expect(await client.get(canary)).toBe('alive');
    await backend.close();
  });
});
