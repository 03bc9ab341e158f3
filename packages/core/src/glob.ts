/**
 * The `RegExp` of a listing's `match` glob (see `ListRequest.match`): `*` matches any run of
 * characters, `?` one character, `\` makes the next character literal, and everything else
 * matches itself. For backends that filter keys themselves.
 *
 * @param pattern - the glob
 * @example
 * ```ts
 * globToRegExp('job:*').test('job:42'); // true
 * ```
 */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index] as string;
    if (char === '*') source += '[\\s\\S]*';
    else if (char === '?') source += '[\\s\\S]';
    else {
      const literal = char === '\\' && index + 1 < pattern.length ? pattern[++index] : char;
      source += (literal as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`, 'u');
}
