import { MemoryBackend } from '../../memory/src/index.js';
import type {
  AcquireRequest,
  AdvanceFenceRequest,
  ExtendRequest,
  LockBackend,
  ReleaseRequest,
} from '../src/index.js';

/**
 * A real MemoryBackend that records every call and lets a test make one operation fail or hang,
 * as a backend does when its server is unreachable. It never invents answers.
 */
export class RecordingBackend implements LockBackend {
  readonly inner: MemoryBackend;
  readonly calls: string[] = [];
  /** When set, `extend` behaves like this instead of asking the inner backend. */
  extendFault: 'reject' | 'hang' | undefined;
  /** When set, `release` rejects like an unreachable server. */
  releaseFault = false;
  /** When set, `waitForRelease` rejects like a lost subscriber connection. */
  waitFault = false;

  constructor(inner = new MemoryBackend()) {
    this.inner = inner;
  }

  acquire(request: AcquireRequest) {
    this.calls.push('acquire');
    return this.inner.acquire(request);
  }

  extend(request: ExtendRequest) {
    this.calls.push('extend');
    if (this.extendFault === 'reject') return Promise.reject(new Error('connect ECONNREFUSED'));
    if (this.extendFault === 'hang') return new Promise<boolean>(() => undefined);
    return this.inner.extend(request);
  }

  release(request: ReleaseRequest) {
    this.calls.push('release');
    if (this.releaseFault) return Promise.reject(new Error('connect ECONNREFUSED'));
    return this.inner.release(request);
  }

  advanceFence(request: AdvanceFenceRequest) {
    return this.inner.advanceFence(request);
  }

  waitForRelease(key: string, signal: AbortSignal) {
    this.calls.push('waitForRelease');
    if (this.waitFault) return Promise.reject(new Error('subscriber lost'));
    return this.inner.waitForRelease(key, signal);
  }

  inspect(key: string) {
    return this.inner.inspect(key);
  }
}
