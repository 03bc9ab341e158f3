/**
 * Forked Node processes of one kind and the parent's side of their IPC: messages routed to a
 * handler and to one-off listeners, deliberate SIGKILLs, and exits that nobody caused (each one a
 * failure of the run). The fault suite's workers and the schedule checker's clients both run here.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { nowMs } from './clock.js';

/** Every message a child sends has a type; `fatal` carries its last words before it exits. */
export type ChildMessage = { type: string } | { type: 'fatal'; message: string };

export interface ChildrenOptions<FromChild extends ChildMessage> {
  /** The compiled module each child runs. */
  module: string;
  /** What the run calls a child in its reports: `worker`, `client process`. */
  noun: string;
  /** Every message of every child, in arrival order. */
  onMessage: (message: FromChild, child: number) => void;
  /** Runs once a child is gone, with when (monotonic ms), however it ended. */
  onExit?: (child: number, at: number) => void;
}

interface Child {
  process: ChildProcess;
  /** Set when the parent kills it on purpose; any other exit is a failure of the run. */
  killedOnPurpose: boolean;
  exited: Promise<void>;
}

type Listener<FromChild> = (message: FromChild, child: number) => void;

export class Children<ToChild, FromChild extends ChildMessage> {
  /** Exits the parent did not cause, with what the child said last. */
  readonly unexpectedExits: string[] = [];
  readonly #options: ChildrenOptions<FromChild>;
  readonly #children = new Map<number, Child>();
  readonly #listeners = new Set<Listener<FromChild>>();
  #nextId = 1;
  #finishing = false;

  constructor(options: ChildrenOptions<FromChild>) {
    this.#options = options;
  }

  /** Forks a child and returns its id at once; it runs until it exits or is killed. */
  fork(): number {
    const id = this.#nextId++;
    const child = fork(this.#options.module, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const entry: Child = {
      process: child,
      killedOnPurpose: false,
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    };
    this.#children.set(id, entry);
    let lastWords = '';
    child.on('message', (message: FromChild) => {
      if (message.type === 'fatal' && 'message' in message) lastWords = message.message;
      this.#options.onMessage(message, id);
      for (const listener of [...this.#listeners]) listener(message, id);
    });
    child.once('exit', (code, signal) => {
      this.#children.delete(id);
      this.#options.onExit?.(id, nowMs());
      if (!entry.killedOnPurpose && !(this.#finishing && code === 0)) {
        this.unexpectedExits.push(
          `${this.#options.noun} ${id} exited (${signal ?? code}) ${lastWords}`.trim(),
        );
      }
    });
    return id;
  }

  send(child: number, message: ToChild): void {
    const process = this.#children.get(child)?.process;
    if (process?.connected) process.send(message as object);
  }

  /** Live children, oldest first. */
  get ids(): number[] {
    return [...this.#children.keys()];
  }

  pid(child: number): number {
    const pid = this.#children.get(child)?.process.pid;
    if (pid === undefined) throw new Error(`${this.#options.noun} ${child} is not running`);
    return pid;
  }

  /** SIGKILLs a child; resolves, once it is gone, with when the signal was sent. */
  async kill(child: number): Promise<number> {
    const entry = this.#children.get(child);
    if (entry === undefined) throw new Error(`${this.#options.noun} ${child} is not running`);
    entry.killedOnPurpose = true;
    const at = nowMs();
    entry.process.kill('SIGKILL');
    await entry.exited;
    return at;
  }

  /** Resolves with the next message that `match` accepts; rejects after `timeoutMs`. */
  next(
    match: (message: FromChild, child: number) => boolean,
    timeoutMs: number,
  ): Promise<FromChild> {
    return new Promise((resolve, reject) => {
      const listener: Listener<FromChild> = (message, child) => {
        if (!match(message, child)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(message);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`no matching ${this.#options.noun} message in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#listeners.add(listener);
    });
  }

  /**
   * Sends `finish` to every child and waits up to `timeoutMs` for them to exit (status 0 then
   * counts as expected); SIGKILLs, and reports, those still running.
   */
  async finish(finish: ToChild, timeoutMs: number): Promise<void> {
    this.#finishing = true;
    const children = [...this.#children.entries()];
    for (const [id] of children) this.send(id, finish);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(children.map(([, child]) => child.exited)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    for (const [id, child] of this.#children) {
      this.unexpectedExits.push(`${this.#options.noun} ${id} did not finish; killed`);
      child.killedOnPurpose = true;
      child.process.kill('SIGKILL');
    }
  }
}
