// require() of every package: Node picks each one's "require" build.
const assert = require('node:assert/strict');

const names = JSON.parse(process.argv[2]);
for (const name of names) {
  const loaded = require(name);
  assert.ok(Object.keys(loaded).length > 0, `require('${name}') exported nothing`);
}

// The harness of @deadbolt/testing needs no vitest (an optional peer, not installed here).
assert.throws(() => require.resolve('vitest'), /Cannot find module/, 'vitest is installed here');
assert.equal(typeof require('@deadbolt/testing').startRedis, 'function');
