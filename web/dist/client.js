// The main thread's handle on a compute worker: requests as promises, progress callbacks, and
// cancel (the worker is terminated, so a run stops at once however long its next block is, and a
// fresh worker takes its place from the already compiled module).

/** Thrown (as a rejection) for requests that a cancel ended. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

export class EngineWorker {
  /** A worker running `module` (the compiled isl_web wasm). */
  constructor(module) {
    this.module = module;
    this.nextId = 1;
    this.spawn();
  }

  spawn() {
    this.pending = new Map();
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.ready = new Promise((resolve, reject) => {
      this.onReady = resolve;
      this.onInitError = reject;
    });
    // Nobody may be waiting on `ready` yet; a failure is reported through the requests.
    this.ready.catch(() => {});
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.fail(`the worker failed: ${event.message || 'unknown error'}`);
    };
    this.worker.onmessageerror = () => this.fail('a message from the worker could not be read');
    this.worker.postMessage({ init: this.module });
  }

  fail(message) {
    this.onInitError(new Error(message));
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
  }

  receive(msg) {
    if (msg.ready) {
      this.onReady(msg.version);
      return;
    }
    if (msg.initError) {
      this.fail(`the engine could not start: ${msg.initError}`);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.progress) {
      if (p.onProgress) p.onProgress(msg.progress);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.error) {
      p.reject(new Error(msg.error));
      if (msg.fatal) this.restart();
    } else {
      p.resolve(msg);
    }
  }

  /** Sends `msg` ({kind, ...}); resolves to the worker's answer. */
  request(msg, onProgress) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress, started: performance.now() });
      this.ready.then(
        () => this.worker.postMessage({ ...msg, id }),
        (e) => {
          this.pending.delete(id);
          reject(e);
        },
      );
    });
  }

  /** The request `handle` of the service: method, path, raw query, content type, body text. */
  handle(method, path, query, contentType, body) {
    return this.request({ kind: 'handle', method, path, query, contentType, body });
  }

  /** POSTs `body` to a Monte Carlo route with progress reports. */
  runMc(path, body, onProgress) {
    return this.request({ kind: 'mc', path, body }, onProgress);
  }

  /** Milliseconds the oldest unanswered request has waited (0 when idle). */
  busyMs() {
    let oldest = Infinity;
    for (const p of this.pending.values()) oldest = Math.min(oldest, p.started);
    return oldest === Infinity ? 0 : performance.now() - oldest;
  }

  /** Ends every pending request with Cancelled and starts a fresh worker. */
  restart() {
    this.worker.terminate();
    const pending = this.pending;
    this.spawn();
    for (const p of pending.values()) p.reject(new Cancelled());
  }
}
