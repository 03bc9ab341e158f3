import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { scripts } from '../src/index.js';

const dir = new URL('../src/lua/', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, dir), 'utf8');
const operations = readdirSync(dir).filter((file) => file.endsWith('.lua') && file !== 'lib.lua');

/** The `KEYS[n]` or `ARGV[n]` references of `text`, as numbers. */
const references = (text: string, table: 'KEYS' | 'ARGV') =>
  [...text.matchAll(new RegExp(`${table}\\[(\\d+)\\]`, 'g'))].map((match) => Number(match[1]));

describe('the Lua sources', () => {
  it('hold one file per exported script, and nothing else but the shared library', () => {
    const exported = Object.values(scripts).map((script) => `${script.name}.lua`);
    expect(operations.sort()).toEqual(exported.sort());
  });

  it.each(operations)(
    '%s opens by naming every KEYS and ARGV entry in order, and reads them nowhere else',
    (file) => {
      const lines = read(file).split('\n');
      const opening = lines.slice(0, 2).filter((line) => line.startsWith('local '));
      // Keys first; list.lua, which runs on a whole server, has none.
      expect(opening[0]).toMatch(/^local .* = (KEYS|ARGV)\[1\]/);
      const rest = lines.slice(opening.length).join('\n');
      expect(references(rest, 'KEYS')).toEqual([]);
      expect(references(rest, 'ARGV')).toEqual([]);
      for (const table of ['KEYS', 'ARGV'] as const) {
        const used = references(opening.join('\n'), table);
        expect(used).toEqual(used.map((_, index) => index + 1));
      }
      // Right after the names, a comment says what the script returns.
      expect(lines[opening.length]).toMatch(/^-- /);
      expect(read(file)).toMatch(/Returns/);
    },
  );

  it('keep KEYS and ARGV out of the shared library', () => {
    expect(read('lib.lua')).not.toMatch(/KEYS\[|ARGV\[/);
  });

  it('are run as the library followed by the operation, each with the SHA1 of that source', () => {
    for (const script of Object.values(scripts)) {
      expect(script.source).toBe(`${read('lib.lua')}\n${read(`${script.name}.lua`)}`);
      expect(script.sha).toBe(createHash('sha1').update(script.source).digest('hex'));
    }
  });
});
