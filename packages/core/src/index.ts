/** @module @deadbolt/core: one lock algorithm over pluggable backends. */

export { whenAborted } from './abort-fanout.js';
export type {
  AcquireGranted,
  AcquireRefused,
  AcquireRequest,
  AcquireResult,
  AdvanceFenceRequest,
  ExtendRequest,
  HandedOff,
  HandoffRequest,
  HolderInfo,
  LockBackend,
  LockInfo,
  ReleaseRequest,
  WaitRequest,
} from './backend.js';
export type { DeadboltErrorCode } from './errors.js';
export {
  BackendError,
  DeadboltError,
  InvalidArgumentError,
  LockLostError,
  LockNotHeldError,
  LockTimeoutError,
  QuorumError,
} from './errors.js';
export { Lock } from './lock.js';
export type {
  AcquireOptions,
  BackoffOptions,
  LockDefaults,
  LockHandle,
  LockManagerOptions,
  PermitOptions,
  ReadWriteLock,
  ReadWriteLockOptions,
  Semaphore,
  SemaphoreOptions,
  TryAcquireOptions,
  TryPermitOptions,
} from './manager.js';
export { HANDOFF_LEASE_MS, LockManager, QUEUE_PLACE_TTL_MS } from './manager.js';
export type { QuorumOptions } from './quorum.js';
export { quorum } from './quorum.js';
export { hideTokens } from './redact.js';
export {
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertExtendRequest,
  assertKey,
  assertReleaseRequest,
  assertWaitRequest,
  MAX_DURATION_MS,
  MAX_KEY_BYTES,
  MIN_TTL_MS,
} from './validation.js';
