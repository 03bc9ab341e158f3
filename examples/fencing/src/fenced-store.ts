import type pg from 'pg';

/** The table, once: each resource's rows, and the highest fence that wrote them. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS fenced_accounts (
  id            text   PRIMARY KEY,
  balance_cents bigint NOT NULL,
  fence         bigint NOT NULL  -- deadbolt fences are about 1.8e15: too big for integer
)`;

/** Thrown when a write carries a fence older than one the row has already accepted. */
export class StaleFenceError extends Error {
  constructor(
    readonly id: string,
    readonly fence: number,
  ) {
    super(`refused a write to ${id} with fence ${fence}: a newer lock holder has written`);
    this.name = 'StaleFenceError';
  }
}

/**
 * Sets an account's balance, unless a holder with a newer fence has written it already. The check
 * and the write are one statement, so nothing can come between them. `<=` lets one holder write
 * several times with its fence.
 */
export async function setBalance(
  db: pg.Pool | pg.PoolClient,
  id: string,
  balanceCents: number,
  fence: number,
): Promise<void> {
  const { rowCount } = await db.query(
    `INSERT INTO fenced_accounts (id, balance_cents, fence) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET balance_cents = EXCLUDED.balance_cents, fence = EXCLUDED.fence
     WHERE fenced_accounts.fence <= EXCLUDED.fence`,
    [id, balanceCents, fence],
  );
  if (rowCount === 0) throw new StaleFenceError(id, fence);
}

/** Reads an account; node-postgres returns `bigint` as a string, and fences fit a double exactly. */
export async function getAccount(
  db: pg.Pool,
  id: string,
): Promise<{ balanceCents: number; fence: number } | undefined> {
  const { rows } = await db.query<{ balance_cents: string; fence: string }>(
    'SELECT balance_cents, fence FROM fenced_accounts WHERE id = $1',
    [id],
  );
  const row = rows[0];
  return row && { balanceCents: Number(row.balance_cents), fence: Number(row.fence) };
}
