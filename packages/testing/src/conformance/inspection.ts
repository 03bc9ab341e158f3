import { type LockBackend, LockManager, READ_WRITE_LIMIT } from '@deadbolt/core';
import { expect, it } from 'vitest';
import { type ConformanceContext, expectGranted, queued, request, withFeature } from './context.js';

type InspectingBackend = LockBackend & Required<Pick<LockBackend, 'inspection'>>;

export function inspectionTests(ctx: ConformanceContext): void {
  it('shows current holders: token, weight, lease left and owner, with the last fence', async () => {
    const backend = withFeature<InspectingBackend>(ctx, 'inspection');
    const key = ctx.key();
    expect(await backend.inspection.inspect({ key })).toBeNull();
    // Two holders: of a semaphore, or (where the backend does not count permits) two readers.
    const limit = ctx.countsPermits ? 3 : READ_WRITE_LIMIT;
    const weight = ctx.countsPermits ? 2 : 1;
    const grant = expectGranted(
      await backend.acquire(request(key, 'holder', { limit, weight, owner: 'web-1:42' })),
    );
    expectGranted(await backend.acquire(request(key, 'anonymous', { limit })));
    const info = await backend.inspection.inspect({ key });
    expect(info?.key).toBe(key);
    const holders = [...(info?.holders ?? [])].sort((a, b) => b.token.localeCompare(a.token));
    expect(holders).toHaveLength(2);
    expect(holders[0]).toMatchObject({ token: 'holder', weight, owner: 'web-1:42' });
    expect(holders[1]).toMatchObject({ token: 'anonymous', weight: 1 });
    expect(holders[1]?.owner).toBeUndefined();
    expect(holders[0]?.ttlMs).toBeGreaterThan(5_000);
    expect(holders[0]?.ttlMs).toBeLessThanOrEqual(30_000);
    expect(info?.fence).toBeGreaterThanOrEqual(grant.fence);
    // An extension keeps the owner.
    expect(await backend.extend({ key, token: 'holder', ttlMs: 60_000 })).toBe(true);
    const extended = (await backend.inspection.inspect({ key }))?.holders.find(
      (holder) => holder.token === 'holder',
    );
    expect(extended).toMatchObject({ weight, owner: 'web-1:42' });
    await backend.release({ key, token: 'holder' });
    await backend.release({ key, token: 'anonymous' });
    expect(await backend.inspection.inspect({ key })).toBeNull();
  });

  it("shows the owner a LockManager gives, by default this process's host and pid", async () => {
    const backend = withFeature<InspectingBackend>(ctx, 'inspection');
    const key = ctx.key();
    const named = await new LockManager({ backend, owner: 'worker ☂ 7' }).acquire(key);
    expect((await backend.inspection.inspect({ key }))?.holders[0]?.owner).toBe('worker ☂ 7');
    await named.release();
    const plain = await new LockManager({ backend }).acquire(key);
    expect((await backend.inspection.inspect({ key }))?.holders[0]?.owner).toMatch(
      new RegExp(`:${process.pid}$`),
    );
    await plain.release();
  });

  if (!ctx.has('queue')) return;
  it('counts the waiters in the queue', async () => {
    const backend = withFeature<InspectingBackend>(ctx, 'inspection');
    const key = ctx.key();
    expectGranted(await backend.acquire(request(key, 'holder')));
    for (const token of ['one', 'two']) {
      expect((await backend.queue?.acquire(queued(key, token)))?.ok).toBe(false);
    }
    expect((await backend.inspection.inspect({ key }))?.queued).toBe(2);
  });
}
