import { inspect } from 'node:util';
import {
  type AcquireRequest,
  BackendError,
  type ExtendRequest,
  type FenceCapability,
  type InspectionCapability,
  InvalidArgumentError,
  type LockBackend,
  LockLostError,
  LockManager,
  type QueueCapability,
  QuorumError,
  quorum,
  type ReleaseRequest,
  type WakeUpCapability,
} from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { describe, expect, it, vi } from 'vitest';

/** A real memory backend behind a switch: while `down`, every call fails like an unreachable server. */
class Switchable implements LockBackend {
  down = false;
  readonly inner: MemoryBackend;

  constructor(clock?: () => number) {
    this.inner = new MemoryBackend(clock ? { clock } : {});
  }

  #guard(): void {
    if (this.down) throw new Error('connect ECONNREFUSED');
  }
  async acquire(request: AcquireRequest) {
    this.#guard();
    return this.inner.acquire(request);
  }
  async extend(request: ExtendRequest) {
    this.#guard();
    return this.inner.extend(request);
  }
  async release(request: ReleaseRequest) {
    this.#guard();
    return this.inner.release(request);
  }
  readonly queue: QueueCapability = {
    acquire: async (request) => {
      this.#guard();
      return this.inner.queue.acquire(request);
    },
  };
  readonly fences: FenceCapability = {
    advance: async (request) => {
      this.#guard();
      return this.inner.fences.advance(request);
    },
  };
  readonly wakeUps: WakeUpCapability = {
    waitForRelease: (request) => this.inner.wakeUps.waitForRelease(request),
  };
  readonly inspection: InspectionCapability = {
    inspect: async (request) => {
      this.#guard();
      return this.inner.inspection.inspect(request);
    },
  };
}

function members(count: number): Switchable[] {
  return Array.from({ length: count }, () => new Switchable());
}

describe('quorum()', () => {
  it('grants with a majority and refuses a second holder', async () => {
    const five = members(5);
    const locks = new LockManager({ backend: quorum(five) });
    const lock = await locks.acquire('q:one', { ttl: 10_000 });
    expect(lock.fence).toBeGreaterThan(0);
    expect(await locks.tryAcquire('q:one')).toBeNull();
    for (const member of five)
      expect((await member.inner.inspection.inspect({ key: 'q:one' }))?.holders).toHaveLength(1);
    expect(await lock.release()).toBe(true);
    for (const member of five)
      expect(await member.inner.inspection.inspect({ key: 'q:one' })).toBeNull();
  });

  it('still works with a minority down', async () => {
    const five = members(5);
    five[0]!.down = true;
    five[1]!.down = true;
    const locks = new LockManager({ backend: quorum(five) });
    const lock = await locks.acquire('q:minority');
    expect(await locks.tryAcquire('q:minority')).toBeNull();
    expect(await lock.release()).toBe(true);
  });

  it('fails with QuorumError naming each member when a majority is down', async () => {
    const five = members(5);
    for (const member of five.slice(0, 3)) member.down = true;
    const locks = new LockManager({ backend: quorum(five) });
    const error = await locks.acquire('q:majority').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuorumError);
    const causes = (error as QuorumError).causes;
    expect(causes).toHaveLength(5);
    expect(causes.slice(0, 3).every((cause) => cause instanceof Error)).toBe(true);
    expect(causes.slice(3)).toEqual([null, null]);
    // Nothing is left behind on the members that did grant.
    for (const member of five.slice(3))
      expect(await member.inner.inspection.inspect({ key: 'q:majority' })).toBeNull();
  });

  it('undoes a partial acquisition that did not reach a majority', async () => {
    const three = members(3);
    // Someone else holds the key on two of three members.
    for (const member of three.slice(0, 2)) {
      await member.inner.acquire({
        key: 'q:partial',
        token: 'other',
        ttlMs: 10_000,
        limit: 1,
        weight: 1,
      });
    }
    const locks = new LockManager({ backend: quorum(three) });
    expect(await locks.tryAcquire('q:partial')).toBeNull();
    expect(await three[2]!.inner.inspection.inspect({ key: 'q:partial' })).toBeNull();
  });

  it('refuses the permits of a semaphore before any I/O: majorities need not share a member', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const pool = locks.semaphore('q:semaphore', { limit: 3 });
    // Granted by members 0+1, 1+2 and 0+2, permits of 1, 2 and 1 would keep each member within 3
    // and add up to 4.
    const refusal = await pool.tryAcquire({ weight: 1 }).catch((caught: unknown) => caught);
    expect(refusal).toBeInstanceOf(InvalidArgumentError);
    expect((refusal as InvalidArgumentError).message).toMatch(/cannot keep a semaphore/);
    for (const member of three)
      expect(await member.inner.inspection.inspect({ key: 'q:semaphore' })).toBeNull();
    // All of the limit at once is a mutex, which a quorum keeps.
    const whole = await pool.tryAcquire({ weight: 3 });
    expect(whole?.held).toBe(true);
    await whole?.release();
  });

  it('keeps a read-write writer from readers granted by other majorities', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const config = locks.readWriteLock('q:config');
    three[2]!.down = true;
    const first = await config.read.tryAcquire();
    three[2]!.down = false;
    three[0]!.down = true;
    const second = await config.read.tryAcquire();
    expect([first?.held, second?.held]).toEqual([true, true]);
    // Whichever two members a writer reaches, one of them has a reader.
    for (const down of [0, 1, 2]) {
      for (const member of three) member.down = false;
      three[down]!.down = true;
      expect(await config.write.tryAcquire()).toBeNull();
    }
  });

  it('keeps fences increasing across acquisitions on different majorities', async () => {
    // One member's clock runs far ahead, so its fences are far higher than the others'.
    const ahead = new Switchable(() => Date.now() + 86_400_000);
    const three = [ahead, new Switchable(), new Switchable()];
    const locks = new LockManager({ backend: quorum(three) });
    const first = await locks.acquire('q:fence');
    await first.release();
    ahead.down = true;
    const second = await locks.acquire('q:fence');
    expect(second.fence).toBeGreaterThan(first.fence);
    await second.release();
  });

  it('grants a lease shorter than asked: the validity window', async () => {
    const locks = new LockManager({ backend: quorum(members(3), { driftFactor: 0.1 }) });
    const lock = await locks.acquire('q:validity', { ttl: 1_000 });
    // At most ttl − drift (1 000 × 0.1 + 2 ms) from now, however long the acquisition took.
    expect(lock.expiresAt - Date.now()).toBeLessThanOrEqual(898);
    await lock.release();
  });

  it('loses the lock when a majority stops confirming extensions', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const lock = await locks.acquire('q:extend', { ttl: 10_000 });
    await lock.extend();
    // Two members forget the holder (as after a restart): extend now reaches only a minority.
    await three[0]!.inner.release({ key: 'q:extend', token: lock.token });
    await three[1]!.inner.release({ key: 'q:extend', token: lock.token });
    await expect(lock.extend()).rejects.toMatchObject({ code: 'LOCK_LOST' });
    expect(lock.signal.aborted).toBe(true);
  });

  it('serves waiters of several processes in turn, queued in one order on every member', async () => {
    const five = members(5);
    const processes = Array.from({ length: 4 }, () => new LockManager({ backend: quorum(five) }));
    const holder = await processes[0]!.acquire('q:turns', { ttl: 10_000 });
    // Waiting with the default (fair) settings, as every process would.
    const waiting = processes.map((locks) =>
      locks.acquire('q:turns', { ttl: 10_000, wait: 10_000 }).then((lock) => lock.release()),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const member of five) {
      expect((await member.inner.inspection.inspect({ key: 'q:turns' }))?.queued).toBe(4);
    }
    await holder.release();
    expect(await Promise.all(waiting)).toEqual([true, true, true, true]);
  });

  it('never starves a writer of a read-write lock: a waiting writer stops new readers on every member', async () => {
    const three = members(3);
    const backend = quorum(three);
    const readers = [new LockManager({ backend }), new LockManager({ backend })];
    const writerSide = new LockManager({ backend: quorum(three) });
    let reading = true;
    // Two reader loops that overlap, so that some reader always holds unless readers stop coming.
    const loops = readers.map(async (locks) => {
      while (reading) {
        await locks
          .readWriteLock('q:rw')
          .read.withLock(() => new Promise((resolve) => setTimeout(resolve, 20)), { wait: 10_000 });
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const write = await writerSide
      .readWriteLock('q:rw')
      .write.acquire({ wait: 3_000 })
      .finally(() => {
        reading = false;
      });
    await write.release();
    await Promise.all(loops);
  });

  it('gives back the lease on the members that still hold it once a majority lost it', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const lock = await locks.acquire('q:lost', { ttl: 10_000 });
    // Two members forget the holder (as after a restart): the lease is lost.
    for (const member of three.slice(0, 2)) {
      await member.inner.release({ key: 'q:lost', token: lock.token });
    }
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    // The third still had it, and would have blocked everyone for ten seconds.
    await vi.waitFor(async () =>
      expect(await three[2]!.inner.inspection.inspect({ key: 'q:lost' })).toBeNull(),
    );
    expect(await locks.tryAcquire('q:lost', { ttl: 10_000 })).not.toBeNull();
  });

  it('resolves false from release() after a lost lease, even with a majority down', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const lock = await locks.acquire('q:lost-release', { ttl: 10_000 });
    for (const member of three.slice(0, 2)) {
      await member.inner.release({ key: 'q:lost-release', token: lock.token });
    }
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    for (const member of three) member.down = true;
    expect(await lock.release()).toBe(false);
  });

  it('reports a majority down on release of a held lock as a QuorumError, which is a BackendError', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const lock = await locks.acquire('q:down-release', { ttl: 10_000 });
    for (const member of three.slice(0, 2)) member.down = true;
    const error = await lock.release().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(QuorumError);
    expect(error).toBeInstanceOf(BackendError);
    expect(error).toMatchObject({ code: 'QUORUM' });
  });

  it('keeps a long-held lock through a rolling restart of empty-restarting members', async () => {
    const three = members(3);
    const locks = new LockManager({ backend: quorum(three) });
    const lock = await locks.acquire('q:rolling', { ttl: 10_000 });
    for (const member of three) {
      // This member restarts empty; the two others still hold the lease.
      await member.inner.release({ key: 'q:rolling', token: lock.token });
      await lock.extend();
      // The extension took the lease again on the member that lost it.
      expect((await member.inner.inspection.inspect({ key: 'q:rolling' }))?.holders).toHaveLength(
        1,
      );
    }
    expect(lock.held).toBe(true);
    expect(await locks.tryAcquire('q:rolling')).toBeNull();
    expect(await lock.release()).toBe(true);
  });

  it('wakes a waiter on the first member that reports a release', async () => {
    const three = members(3);
    const backend = quorum(three);
    const controller = new AbortController();
    let woken = false;
    const waiting = backend.wakeUps
      ?.waitForRelease({ key: 'q:wake', signal: controller.signal })
      .then(() => {
        woken = true;
      });
    await three[1]!.inner.acquire({
      key: 'q:wake',
      token: 't',
      ttlMs: 10_000,
      limit: 1,
      weight: 1,
    });
    await three[1]!.inner.release({ key: 'q:wake', token: 't' });
    await waiting;
    expect(woken).toBe(true);
  });

  it.each<[problem: string, build: () => unknown, argument: string]>([
    ['no backends', () => quorum([]), 'backends'],
    ['not an array', () => quorum('redis' as never), 'backends'],
    [
      'a duplicated backend',
      () => {
        const one = new MemoryBackend();
        return quorum([one, one]);
      },
      'backends[1]',
    ],
    [
      'a member without the fences capability',
      () =>
        quorum([
          {
            acquire: async () => ({ ok: false as const }),
            extend: async () => false,
            release: async () => false,
          },
        ]),
      'backends[0]',
    ],
    [
      'a sparse array (a hole is no backend)',
      () => {
        const sparse = [new MemoryBackend()];
        sparse[2] = new MemoryBackend();
        return quorum(sparse);
      },
      'backends[1]',
    ],
    ['null among the backends', () => quorum([new MemoryBackend(), null as never]), 'backends[1]'],
    [
      'a bad driftFactor',
      () => quorum([new MemoryBackend()], { driftFactor: 0.7 }),
      'options.driftFactor',
    ],
    ...[Number.NaN, Number.POSITIVE_INFINITY, -0.1, 0.5, '0.1'].map(
      (driftFactor) =>
        [
          `a driftFactor of ${String(driftFactor)}`,
          () => quorum([new MemoryBackend()], { driftFactor: driftFactor as number }),
          'options.driftFactor',
        ] as [string, () => unknown, string],
    ),
    ...[0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31].map(
      (retryInMs) =>
        [
          `a retryInMs of ${retryInMs}`,
          () => quorum([new MemoryBackend()], { retryInMs }),
          'options.retryInMs',
        ] as [string, () => unknown, string],
    ),
    [
      'an unknown option',
      () => quorum([new MemoryBackend()], { drift: 1 } as never),
      'options.drift',
    ],
  ])('rejects %s with InvalidArgumentError', (_, build, argument) => {
    expect(build).toThrow(InvalidArgumentError);
    expect(build).toThrow(`invalid ${argument}:`);
  });

  it('refuses a bad waitForRelease call with a rejected promise, before watching any member', async () => {
    const backend = quorum(members(3));
    const signal = new AbortController().signal;
    for (const [call, argument] of [
      [() => backend.wakeUps!.waitForRelease({ key: '', signal }), 'request.key'],
      [() => backend.wakeUps!.waitForRelease({ key: 'k', signal: {} as never }), 'request.signal'],
      [
        () => backend.wakeUps!.waitForRelease({ key: 'k', signal, since: Number.NaN }),
        'request.since',
      ],
    ] as const) {
      await expect(call()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', argument });
    }
  });

  it('prints what inspect returns with the tokens redacted', async () => {
    const backend = quorum(members(3));
    await backend.acquire({ key: 'k', token: 'secret-token', ttlMs: 10_000, limit: 1, weight: 1 });
    const info = await backend.inspection!.inspect({ key: 'k' });
    expect(info?.holders[0]?.token).toBe('secret-token');
    expect(JSON.stringify(info)).not.toContain('secret-token');
    expect(inspect(info, { depth: 5 })).not.toContain('secret-token');
    expect(inspect(info, { depth: 5 })).toContain("token: '[redacted]'");
  });
});
