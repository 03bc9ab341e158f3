import { LockManager } from '@deadbolt/core';
import { MemoryBackend } from '@deadbolt/memory';
import { type Contender, managerClient } from './types.js';

/** One in-process backend shared by every client of this contender, as Redis is shared. */
let shared: MemoryBackend | undefined;

/** The ceiling: deadbolt's algorithm with no network at all (`MemoryBackend`, defaults). */
export const deadboltMemory: Contender = {
  id: 'deadbolt-memory',
  label: 'deadbolt + memory (ceiling)',
  library: '@deadbolt/memory (workspace)',
  settings: 'defaults',
  role: 'ceiling',
  usesRedis: false,
  async open() {
    shared ??= new MemoryBackend();
    // Each client is its own manager (its own local queue), like a separate process.
    const locks = new LockManager({ backend: shared });
    return managerClient(locks, async () => {});
  },
};
