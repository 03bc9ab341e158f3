import type { Redis } from 'ioredis';

/** `INFO <section>` as name → value. */
export async function info(admin: Redis, section: string): Promise<Map<string, string>> {
  const text = await admin.info(section);
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (line.startsWith('#') || colon === -1) continue;
    fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Calls per command from `INFO commandstats` (`cmdstat_evalsha` → `evalsha`, subcommands kept). */
export async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const [name, value] of await info(admin, 'commandstats')) {
    const match = /(?:^|,)calls=(\d+)/.exec(value);
    if (name.startsWith('cmdstat_') && match) calls.set(name.slice(8), Number(match[1]));
  }
  return calls;
}

/** `used_memory` in bytes. */
export async function usedMemory(admin: Redis): Promise<number> {
  return Number((await info(admin, 'memory')).get('used_memory'));
}

/** Connections the server has now (the admin connection included). */
export async function connectionCount(admin: Redis): Promise<number> {
  const list = String(await admin.call('CLIENT', 'LIST'));
  return list.split('\n').filter((line) => line.startsWith('id=')).length;
}

/** `redis_version`. */
export async function redisVersion(admin: Redis): Promise<string> {
  return (await info(admin, 'server')).get('redis_version') ?? 'unknown';
}
