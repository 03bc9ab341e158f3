import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LockManager } from '@deadbolt/core';
import { IoredisBackend } from '@deadbolt/ioredis';
import { startRedis } from '@deadbolt/testing';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { cli, freePort, randomId } from './helpers.js';

it('rediss:// speaks TLS, and trusts what Node trusts (NODE_EXTRA_CA_CERTS)', {
  timeout: 120_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deadbolt-cli-tls-'));
  try {
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    // A self-signed certificate for 127.0.0.1, which is its own CA.
    const subject = '-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1';
    await promisify(execFile)('openssl', [
      ...`req -x509 -newkey rsa:2048 -nodes -days 1 ${subject}`.split(' '),
      ...['-keyout', key, '-out', cert],
    ]);
    const tlsPort = await freePort();
    const tls = {
      'tls-port': String(tlsPort),
      'tls-cert-file': cert,
      'tls-key-file': key,
      'tls-ca-cert-file': cert,
      'tls-auth-clients': 'no',
    };
    await using server = await startRedis({
      args: Object.entries(tls).flatMap(([name, value]) => [`--${name}`, value]),
    });
    // The lock is taken over the plain port; the CLI reads it over TLS.
    const client = new Redis(server.url);
    const lockKey = `invoice:${randomId()}`;
    const lock = await new LockManager({
      backend: new IoredisBackend(client),
      owner: 'worker-1',
    }).acquire(lockKey);
    try {
      const url = `rediss://127.0.0.1:${tlsPort}`;
      const trusted = await cli(['inspect', lockKey, '--url', url, '--json'], {
        NODE_EXTRA_CA_CERTS: cert,
      });
      expect(trusted.code).toBe(0);
      expect(JSON.parse(trusted.stdout)).toMatchObject({
        holders: [{ owner: 'worker-1' }],
        fence: lock.fence,
      });

      expect(await cli(['inspect', lockKey, '--url', url])).toEqual({
        code: 2,
        stdout: '',
        stderr: `deadbolt: cannot connect to ${url}: self-signed certificate\n`,
      });
    } finally {
      await lock.release();
      await client.quit();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
