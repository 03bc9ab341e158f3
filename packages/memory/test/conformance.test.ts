import { runBackendConformance } from '@deadbolt/testing';
import { MemoryBackend } from '../src/index.js';

runBackendConformance({ name: 'memory', create: () => new MemoryBackend() });
