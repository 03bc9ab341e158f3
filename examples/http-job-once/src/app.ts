import { createServer, type Server } from 'node:http';
import { type LockManager, LockTimeoutError } from '@deadbolt/core';
import type { Redis } from 'ioredis';

/** What `POST /jobs/:id` answers. */
export interface JobReply {
  id: string;
  /** The job's result, from whichever process ran it. */
  result: string;
  /** True when this request ran the job; false when it found the job already done. */
  ranNow: boolean;
}

export interface JobServerOptions {
  locks: LockManager;
  /** Where results are kept: every process sees the same ones. */
  redis: Redis;
  /** The job itself. It must stop when `signal` aborts: the lock was lost, another may run it. */
  job: (id: string, signal: AbortSignal) => Promise<string>;
}

/**
 * `POST /jobs/:id` runs job `id` once. Concurrent requests for one id, on this process or any
 * other sharing the Redis, wait for the one that runs it and answer with its result.
 */
export function createJobServer({ locks, redis, job }: JobServerOptions): Server {
  return createServer((request, response) => {
    const id = /^\/jobs\/([\w-]{1,64})$/.exec(request.url ?? '')?.[1];
    if (request.method !== 'POST' || id === undefined) {
      response.writeHead(404).end();
      return;
    }
    runOnce(id).then(
      (reply) => send(response, 200, reply),
      (error: unknown) => {
        if (error instanceof LockTimeoutError) {
          // Still running elsewhere after `wait`: the client asks again later.
          response.setHeader('retry-after', '1');
          send(response, 503, { error: 'the job is still running, try again' });
        } else {
          send(response, 500, { error: String(error) });
        }
      },
    );
  });

  async function runOnce(id: string): Promise<JobReply> {
    const resultKey = `example:job-result:${id}`;
    // Done already: no lock needed to read a result.
    const done = await redis.get(resultKey);
    if (done !== null) return { id, result: done, ranNow: false };

    return locks.withLock(
      `job:${id}`,
      async (lock) => {
        // Checked again under the lock: the holder before us may have finished meanwhile.
        const doneMeanwhile = await redis.get(resultKey);
        if (doneMeanwhile !== null) return { id, result: doneMeanwhile, ranNow: false };
        const result = await job(id, lock.signal);
        // Record the result only while the lease is still ours (see docs/fencing.md to make the
        // store itself refuse a late writer).
        lock.signal.throwIfAborted();
        await redis.set(resultKey, result);
        return { id, result, ranNow: true };
      },
      { ttl: 10_000, wait: 30_000 },
    );
  }
}

function send(response: import('node:http').ServerResponse, status: number, body: object): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
