import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  chooseRedisProvider,
  findRedisServerBinary,
  isDockerAvailable,
  startRedis,
  startRedisServers,
} from '../src/index.js';

describe('chooseRedisProvider', () => {
  it.each([
    [
      { redisUrl: 'redis://10.0.0.5:6380', binary: '/usr/bin/redis-server', dockerAvailable: true },
      'external',
    ],
    [{ redisUrl: undefined, binary: '/usr/bin/redis-server', dockerAvailable: true }, 'binary'],
    [{ redisUrl: undefined, binary: undefined, dockerAvailable: true }, 'testcontainers'],
  ] as const)('picks %o → %s', (facts, provider) => {
    expect(chooseRedisProvider(facts)).toBe(provider);
  });

  it('says what to install when there is no Redis at all', () => {
    expect(() =>
      chooseRedisProvider({ redisUrl: undefined, binary: undefined, dockerAvailable: false }),
    ).toThrow(/install redis-server/);
  });

  it('finds redis-server only where PATH says', () => {
    expect(findRedisServerBinary('/nonexistent:/also/missing')).toBeUndefined();
    const found = findRedisServerBinary();
    if (found !== undefined) expect(existsSync(found)).toBe(true);
  });

  it('sees Docker through DOCKER_HOST', () => {
    expect(isDockerAvailable({ DOCKER_HOST: 'tcp://127.0.0.1:2375' })).toBe(true);
  });
});

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(300, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
    socket.once('data', () => {
      socket.destroy();
      resolve(true);
    });
    socket.write('*1\r\n$4\r\nPING\r\n');
  });

describe('startRedis', () => {
  it('starts a private server that can be paused, killed, restarted empty and stopped', async () => {
    const server = await startRedis();
    expect(server.port).not.toBe(6379);
    expect(await server.command('SET', 'k', 'v')).toBe('+OK\r\n');
    await server.pause();
    expect(await answers(server.port)).toBe(false);
    await server.resume();
    expect(await answers(server.port)).toBe(true);
    await server.kill();
    expect(await answers(server.port)).toBe(false);
    await server.restart();
    expect(await server.command('EXISTS', 'k')).toBe(':0\r\n');
    await server.stop();
    expect(await answers(server.port)).toBe(false);
  });

  it('starts independent servers on distinct ports', async () => {
    const servers = await startRedisServers(3);
    try {
      expect(new Set(servers.map((server) => server.port)).size).toBe(3);
      await servers[0]!.command('SET', 'only-here', '1');
      expect(await servers[1]!.command('EXISTS', 'only-here')).toBe(':0\r\n');
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });

  it('refuses faults on a server it did not start', async () => {
    const external = await startRedis({ url: 'redis://127.0.0.1:1' });
    expect(external.provider).toBe('external');
    await expect(external.kill()).rejects.toThrow(/not started by the harness/);
  });
});
