import type { CommandContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import {
  type HolderJson,
  holderJson,
  jsonLine,
  lockJson,
  lockView,
  printable,
  type ReleaseJson,
} from '../format.js';
import { confirm } from '../prompt.js';

/**
 * `deadbolt release <key> --force`: releases every holder the key has now, with the tokens
 * inspection reads, after asking unless `yes`. Only the holders shown are released: one that
 * came meanwhile keeps the lock. Exit code 3 when nobody held it, 4 when the answer was no.
 */
export async function release(
  { backend, io, json }: CommandContext,
  { key, yes }: { key: string; yes: boolean },
): Promise<ExitCode> {
  const info = await backend.inspection.inspect({ key });
  if (info === null) {
    if (json) io.stdout.write(jsonLine({ key, released: [], ended: [] } satisfies ReleaseJson));
    else io.stderr.write(`deadbolt: nobody holds ${printable(key)}: nothing to release\n`);
    return ExitCode.notFound;
  }
  if (!yes) {
    io.stderr.write(
      `${lockView(lockJson(info))}\nReleasing takes the lock from its holders without telling them: each may go on\nworking until its next extension fails. The next waiter in the queue gets the lock.\n`,
    );
    if (
      !(await confirm(io, `Release ${plural(info.holders.length)} of ${printable(key)}? [y/N] `))
    ) {
      io.stderr.write('deadbolt: not released\n');
      return ExitCode.aborted;
    }
  }
  const released: HolderJson[] = [];
  const ended: HolderJson[] = [];
  await Promise.all(
    info.holders.map(async (holder) => {
      const freed = await backend.release({ key, token: holder.token });
      (freed ? released : ended).push(holderJson(holder));
    }),
  );
  if (json) io.stdout.write(jsonLine({ key, released, ended } satisfies ReleaseJson));
  else {
    const list = (holders: HolderJson[]) =>
      holders
        .map((holder) => `${printable(holder.owner ?? '-')} (weight ${holder.weight})`)
        .join(', ');
    if (released.length > 0) {
      io.stdout.write(
        `released ${plural(released.length)} of ${printable(key)}: ${list(released)}\n`,
      );
    }
    if (ended.length > 0) {
      io.stdout.write(`already gone: ${list(ended)}\n`);
    }
  }
  return released.length > 0 ? ExitCode.ok : ExitCode.notFound;
}

function plural(count: number): string {
  return count === 1 ? '1 holder' : `${count} holders`;
}
