import { describe, expect, it } from 'vitest';
import { globToRegExp } from '../src/glob.js';

describe('globToRegExp', () => {
  it.each([
    ['*', ['', 'a', 'job:42', 'x\ny'], []],
    ['job:*', ['job:', 'job:42', 'job:a:b'], ['jo', 'xjob:1', 'Job:1']],
    ['job:?', ['job:1', 'job:é'], ['job:', 'job:12']],
    ['a.b', ['a.b'], ['axb']],
    ['\\*', ['*'], ['a']],
    ['100%\\?', ['100%?'], ['100%x']],
    ['(x)[y]{z}', ['(x)[y]{z}'], ['x']],
  ])('%s matches what it names and nothing else', (pattern, matching, other) => {
    const regexp = globToRegExp(pattern);
    for (const key of matching) expect(regexp.test(key), key).toBe(true);
    for (const key of other) expect(regexp.test(key), key).toBe(false);
  });
});
