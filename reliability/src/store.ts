/**
 * The protected resource: a counter that knows nothing of the lock and checks fences. The parent
 * process owns it, and serves it to the workers over IPC one message at a time, so each access is
 * atomic without any lock.
 *
 * It refuses any access, read or write, whose fence is lower than the highest it has seen. Checking
 * writes alone would not do for a read-modify-write: a frozen holder that read before its lease
 * ran out could still write between the next holder's read and that holder's write, and one of the
 * two increments would be lost; once the next holder's read has shown its higher fence, the old
 * holder's write is refused.
 */
export class FencedCounter {
  value = 0;
  /** Highest fence any access presented. */
  highestFence = 0;
  acceptedWrites = 0;
  staleReads = 0;
  staleWrites = 0;
  /** Writes that did not add exactly one to the value they replaced (must stay 0). */
  nonIncrements = 0;
  /** Fence of the last accepted write. */
  lastWriteFence = 0;

  read(fence: number): { ok: boolean; value: number } {
    if (fence < this.highestFence) {
      this.staleReads += 1;
      return { ok: false, value: this.value };
    }
    this.highestFence = fence;
    return { ok: true, value: this.value };
  }

  write(fence: number, value: number): boolean {
    if (fence < this.highestFence) {
      this.staleWrites += 1;
      return false;
    }
    this.highestFence = fence;
    if (value !== this.value + 1) this.nonIncrements += 1;
    this.value = value;
    this.acceptedWrites += 1;
    this.lastWriteFence = fence;
    return true;
  }

  /** Increments accepted but missing from the value: 0 unless two holders interleaved. */
  get lostUpdates(): number {
    return this.acceptedWrites - this.value;
  }
}
