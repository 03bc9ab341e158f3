// A module import rather than a file read: bundlers inline it, and `dist/` sits beside it as `src/` does.
import manifest from '../package.json' with { type: 'json' };

/** The version of `@deadbolt/cli`, as `deadbolt --version` prints it. */
export const VERSION: string = manifest.version;
