import { type LockManager, LockTimeoutError } from '@deadbolt/core';

/** Where payouts go; `fence` lets it refuse a payer whose lock was lost. */
export interface Ledger {
  pay(
    account: string,
    cents: number,
    options: { fence: number; signal: AbortSignal },
  ): Promise<void>;
}

/** The code under test: pays an account at most one payout at a time. */
export class Payouts {
  constructor(
    private readonly locks: LockManager,
    private readonly ledger: Ledger,
  ) {}

  /** Pays `cents` to `account`; resolves `'busy'` when another payout held it for 2 s. */
  async pay(account: string, cents: number): Promise<'paid' | 'busy'> {
    try {
      return await this.locks.withLock(
        `payout:${account}`,
        async (lock) => {
          await this.ledger.pay(account, cents, { fence: lock.fence, signal: lock.signal });
          return 'paid' as const;
        },
        { ttl: 10_000, wait: 2_000 },
      );
    } catch (error) {
      if (error instanceof LockTimeoutError) return 'busy';
      throw error;
    }
  }
}
