import { quorum } from '@deadbolt/core';
import { runBackendConformance } from '@deadbolt/testing/conformance';
import { MemoryBackend } from '../src/index.js';

runBackendConformance({
  name: 'memory',
  create: () => new MemoryBackend(),
  capabilities: ['queue', 'wakeUps', 'handoff', 'fences', 'inspection', 'listing', 'close'],
});

runBackendConformance({
  name: 'quorum() of three memory backends',
  create: () => quorum([new MemoryBackend(), new MemoryBackend(), new MemoryBackend()]),
  capabilities: ['queue', 'wakeUps', 'fences', 'inspection'],
  // Majorities that grant permits need not share a member: quorum() refuses semaphores.
  semaphores: false,
});
