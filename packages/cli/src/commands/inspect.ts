import type { CommandContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { jsonLine, lockJson, lockView, printable } from '../format.js';

/** `deadbolt inspect <key>`: the key's holders, fence and queue; exit code 3 when nobody holds it. */
export async function inspect(
  { backend, io, json }: CommandContext,
  { key }: { key: string },
): Promise<ExitCode> {
  const info = await backend.inspection.inspect({ key });
  if (json) io.stdout.write(jsonLine(info === null ? null : lockJson(info)));
  else if (info === null) io.stderr.write(`deadbolt: nobody holds ${printable(key)}\n`);
  else io.stdout.write(lockView(lockJson(info)));
  return info === null ? ExitCode.notFound : ExitCode.ok;
}
