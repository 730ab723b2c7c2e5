// The page's compute worker: isl-service compiled to wasm, answering requests off the main
// thread. Messages in: {init: WebAssembly.Module} once, then {id, kind: 'handle', method, path,
// query, contentType, body} or {id, kind: 'mc', path, body}. Messages out: {ready} or
// {initError}, {id, progress: {done, total}} while sampling, {id, response, histogram,
// elapsedMs} or {id, error}.

import init, { Isl } from './pkg/isl_web.js';

let isl = null;
const encoder = new TextEncoder();

async function start(module) {
  try {
    await init({ module_or_path: module });
    isl = new Isl();
    postMessage({ ready: true, version: Isl.version() });
  } catch (e) {
    postMessage({ initError: String(e && e.message ? e.message : e) });
  }
}

function answer(msg) {
  const body = encoder.encode(msg.body ?? '');
  const t0 = performance.now();
  if (msg.kind === 'mc') {
    let last = 0;
    const progress = (done, total) => {
      const now = performance.now();
      if (now - last >= 50) {
        last = now;
        postMessage({ id: msg.id, progress: { done, total } });
      }
    };
    const r = isl.runMc(msg.path, body, progress);
    const elapsedMs = performance.now() - t0;
    return { id: msg.id, response: { status: r.status, headers: r.headers, body: r.body }, histogram: r.histogram, elapsedMs };
  }
  const r = isl.handle(msg.method, msg.path, msg.query ?? undefined, msg.contentType ?? undefined, body);
  const elapsedMs = performance.now() - t0;
  return { id: msg.id, response: { status: r.status, headers: r.headers, body: r.body }, elapsedMs };
}

onmessage = (event) => {
  const msg = event.data;
  if (msg && msg.init) {
    start(msg.init);
    return;
  }
  if (!isl) {
    postMessage({ id: msg && msg.id, error: 'the engine is not loaded yet' });
    return;
  }
  try {
    postMessage(answer(msg));
  } catch (e) {
    // A trap inside the module (a bug, never bad input) leaves it unusable: say so, start over.
    postMessage({ id: msg.id, error: `the engine failed: ${e && e.message ? e.message : e}`, fatal: true });
  }
};
