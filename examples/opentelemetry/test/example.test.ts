import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));

it('prints each job’s span with the wait, then the hold, under it; the second handed over', async () => {
  const { stdout } = await run(process.execPath, ['dist/main.js'], { cwd: exampleDir });
  // Durations and fences vary from run to run; the shape does not.
  const shape = stdout
    .replace(/ \(\d+\.\d ms\)/g, '')
    .replace(/fence=\d+/g, 'fence=F')
    .replace(/sum=\d+\.\d+/g, 'sum=S');
  const lock = 'key=report:daily';
  expect(shape.split('\n')).toEqual([
    'spans:',
    'job worker-1',
    `├─ deadbolt.acquire ${lock} owner=worker-1 waits=true handed_off=false outcome=acquired fence=F`,
    `└─ deadbolt.hold ${lock} owner=worker-1 fence=F handed_off=false ttl_ms=30000 outcome=released`,
    'job worker-2',
    `├─ deadbolt.acquire ${lock} owner=worker-2 waits=true handed_off=true outcome=acquired fence=F`,
    `└─ deadbolt.hold ${lock} owner=worker-2 fence=F handed_off=true ttl_ms=30000 outcome=released`,
    '',
    'metrics:',
    'deadbolt.lock.wait.duration {key=report, owner=worker-1, outcome=acquired} count=1 sum=S s',
    'deadbolt.lock.wait.duration {key=report, owner=worker-2, outcome=acquired} count=1 sum=S s',
    'deadbolt.lock.hold.duration {key=report, owner=worker-1, outcome=released} count=1 sum=S s',
    'deadbolt.lock.hold.duration {key=report, owner=worker-2, outcome=released} count=1 sum=S s',
    'deadbolt.lock.held {key=report, owner=worker-1} 0',
    'deadbolt.lock.held {key=report, owner=worker-2} 0',
    'deadbolt.lock.handoffs {key=report, owner=worker-2} 1',
    '',
  ]);
  // worker-1 released before worker-2 was granted: the second fence is the higher.
  const fences = [...stdout.matchAll(/deadbolt\.hold .*fence=(\d+)/g)].map((match) =>
    Number(match[1]),
  );
  expect(fences).toHaveLength(2);
  expect(fences[1]).toBeGreaterThan(fences[0]!);
});
