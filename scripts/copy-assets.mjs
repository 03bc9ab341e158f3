// Copies non-TypeScript assets (for example .lua scripts) from src/ to dist/, keeping paths.
// Usage: node copy-assets.mjs <from> <to> <extension>
import { cpSync } from 'node:fs';

const [from, to, extension] = process.argv.slice(2);
if (!from || !to || !extension) throw new Error('usage: copy-assets.mjs <from> <to> <extension>');
cpSync(from, to, {
  recursive: true,
  filter: (path) => !path.includes('.') || path.endsWith(extension) || !/\.[^/]+$/.test(path),
});
