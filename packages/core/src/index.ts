/**
 * One lock algorithm over pluggable backends.
 *
 * @module @deadbolt/core
 */

export { whenAborted } from './abort-fanout.js';
export type { AcquisitionState } from './acquisition.js';
export { HANDOFF_LEASE_MS, QUEUE_PLACE_TTL_MS } from './acquisition.js';
export type {
  AcquireGranted,
  AcquireRefused,
  AcquireRequest,
  AcquireResult,
  AdvanceFenceRequest,
  ExtendRequest,
  FenceCapability,
  GrantWaitRequest,
  HandedOff,
  HandoffCapability,
  HandoffRequest,
  HolderInfo,
  InspectionCapability,
  InspectRequest,
  ListingCapability,
  ListPage,
  ListRequest,
  LockBackend,
  LockInfo,
  QueueCapability,
  QueuedAcquireRequest,
  ReleaseRequest,
  WaitRequest,
  WakeUpCapability,
} from './backend.js';
export type { DeadboltErrorCode } from './errors.js';
export {
  BackendError,
  DeadboltError,
  InvalidArgumentError,
  LockLostError,
  LockNotHeldError,
  LockTimeoutError,
  NestedLockError,
  QuorumError,
} from './errors.js';
export type {
  AcquiredEvent,
  AcquireTraceContext,
  ExtendedEvent,
  ExtendFailedEvent,
  LockEventBase,
  LockEventListener,
  LockEventName,
  LockEvents,
  LostEvent,
  ReleasedEvent,
  ReleaseFailedEvent,
  TimedOutEvent,
} from './events.js';
export { globToRegExp } from './glob.js';
export { READ_WRITE_LIMIT } from './limits.js';
export type { HeldLock } from './lock.js';
export { Lock } from './lock.js';
export { LockSet } from './lock-set.js';
export type {
  AcquireOptions,
  BackoffOptions,
  LockDefaults,
  LockHandle,
  LockManagerOptions,
  MultiAcquireOptions,
  PermitOptions,
  ReadWriteLock,
  ReadWriteLockOptions,
  ResumeOptions,
  Semaphore,
  SemaphoreOptions,
  TryAcquireOptions,
  TryPermitOptions,
  WithLockOptions,
  WithPermitOptions,
} from './manager.js';
export { LockManager } from './manager.js';
export type { QuorumOptions } from './quorum.js';
export { quorum } from './quorum.js';
export { hideTokens } from './redact.js';
export type { BackendCapability } from './validation.js';
export {
  assertAcquireRequest,
  assertAdvanceFenceRequest,
  assertExtendRequest,
  assertGrantWaitRequest,
  assertInspectRequest,
  assertKey,
  assertListRequest,
  assertQueuedAcquireRequest,
  assertReleaseRequest,
  assertWaitRequest,
  BACKEND_CAPABILITIES,
  MAX_DURATION_MS,
  MAX_KEY_BYTES,
  MAX_OWNER_BYTES,
  MIN_TTL_MS,
} from './validation.js';
