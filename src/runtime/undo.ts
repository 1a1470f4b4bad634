// An undo stack for multi-step operations (youki's cleanup, crun's fail: label).
// `onFail` actions run only when the operation fails; `always` ones (closing fds) run in
// both cases. Both run in reverse order; errors are collected, never thrown, so the
// original cause stays the error the caller sees.
export class Undo {
  private stack: Array<{ fn: () => void; always: boolean }> = [];

  onFail(fn: () => void): void {
    this.stack.push({ fn, always: false });
  }

  always(fn: () => void): void {
    this.stack.push({ fn, always: true });
  }

  /** Success: run only the `always` actions. */
  commit(): Error[] {
    return this.drain(false);
  }

  /** Failure: run everything. */
  rollback(): Error[] {
    return this.drain(true);
  }

  private drain(all: boolean): Error[] {
    const errors: Error[] = [];
    for (const { fn, always } of this.stack.reverse()) {
      if (!all && !always) continue;
      try {
        fn();
      } catch (e) {
        errors.push(e as Error);
      }
    }
    this.stack = [];
    return errors;
  }
}
