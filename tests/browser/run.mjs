// The browser demo in headless Chromium, against the page `isl serve` serves (tests/browser.rs
// starts the server and runs this). Exits 1 when a check fails.
//
//   node tests/browser/run.mjs --url http://127.0.0.1:PORT --chromium /usr/bin/chromium \
//        --out target/browser-artifacts [--workloads FILE --bench] [--page URL]
//
// --page loads the page from elsewhere (web/page with another build of web/dist/pkg beside it,
// behind any static server);
// the answers it is compared with still come from --url.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    chromium: { type: 'string' },
    out: { type: 'string' },
    workloads: { type: 'string' },
    bench: { type: 'boolean', default: false },
    page: { type: 'string' },
  },
});
const base = args.url;
const pageBase = args.page ?? base;
mkdirSync(args.out, { recursive: true });

let failures = 0;
function check(ok, what, detail = '') {
  if (ok) {
    console.log(`ok   ${what}`);
  } else {
    failures++;
    console.log(`FAIL ${what}${detail ? `\n       ${detail}` : ''}`);
  }
  return ok;
}

// Headless here and in containers (root: no sandbox; a small /dev/shm).
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const b64 = (text) => Buffer.from(text, 'utf8').toString('base64url');
const unb64 = (q) => Buffer.from(q, 'base64url').toString('utf8');

/** What the server answers to a GET of `route` with `query` (raw, without '?'). */
async function serverGet(route, query) {
  const r = await fetch(`${base}${route}${query ? `?${query}` : ''}`);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

async function serverPost(route, json) {
  const r = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

// ---------------------------------------------------------------------------------------------
// Requests for the URL contract: every causal and Monte Carlo route, valid and invalid.

const MODEL = {
  nodes: [
    { name: 'Price', noise: { dist: 'normal', mean: 10, std: 1 } },
    { name: 'Demand', intercept: 100, parents: { Price: { dist: 'normal', mean: -2.0, std: 0.3 } }, noise: { dist: 'normal', mean: 0, std: 5 } },
    { name: 'Revenue', expr: 'Price * Demand' },
  ],
};
const FRONT = { edges: [['X', 'M'], ['M', 'Y'], ['U', 'X'], ['U', 'Y']], latent: ['U'] };
const CONFOUNDED = { edges: [['Z', 'X'], ['Z', 'Y'], ['X', 'Y'], ['W', 'X']] };
const big = { nodes: Array.from({ length: 10_001 }, (_, i) => `N${i}`), edges: [] };

const CASES = [
  ['validate: confounded', '/v1/causal/validate', { dag: CONFOUNDED, treatment: 'X', outcome: 'Y' }],
  ['validate: front door', '/v1/causal/validate', { dag: FRONT, treatment: 'X', outcome: 'Y' }],
  ['validate: no treatment', '/v1/causal/validate', { dag: CONFOUNDED }],
  ['validate: a cycle', '/v1/causal/validate', { dag: { edges: [['A', 'B'], ['B', 'C'], ['C', 'A']] }, treatment: 'A', outcome: 'C' }],
  ['validate: names with spaces and unicode', '/v1/causal/validate', { dag: { edges: [['Größe A', 'ü b'], ['c "q"', 'ü b']] }, treatment: 'Größe A', outcome: 'ü b' }],
  ['validate: max_sets 1', '/v1/causal/validate', { dag: { edges: [['A', 'X'], ['B', 'X'], ['A', 'Y'], ['B', 'Y'], ['A', 'B'], ['X', 'Y']] }, treatment: 'X', outcome: 'Y', max_sets: 1 }],
  ['validate: unknown treatment (422)', '/v1/causal/validate', { dag: CONFOUNDED, treatment: 'Nope', outcome: 'Y' }],
  // 105 kB of q: past the server's URI limit (414), so its answer to the same JSON as a POST.
  ['validate: 10,001 nodes (422)', '/v1/causal/validate', { dag: big }, undefined, 'post'],
  ['validate: unknown field (400/422)', '/v1/causal/validate', { dag: CONFOUNDED, extra: true }],
  ['d-separation: one query', '/v1/causal/d-separation', { dag: CONFOUNDED, x: ['X'], y: ['Y'], given: ['Z'] }],
  ['d-separation: batch', '/v1/causal/d-separation', { dag: CONFOUNDED, queries: [{ x: ['W'], y: ['Z'], given: [] }, { x: ['W'], y: ['Y'], given: ['X'] }] }],
  ['backdoor: valid', '/v1/causal/backdoor', { dag: CONFOUNDED, treatment: 'X', outcome: 'Y', adjustment: ['Z'] }],
  ['backdoor: invalid', '/v1/causal/backdoor', { dag: CONFOUNDED, treatment: 'X', outcome: 'Y', adjustment: [] }],
  ['frontdoor: valid', '/v1/causal/frontdoor', { dag: FRONT, treatment: 'X', outcome: 'Y', mediators: ['M'] }],
  ['frontdoor: invalid', '/v1/causal/frontdoor', { dag: CONFOUNDED, treatment: 'X', outcome: 'Y', mediators: ['Z'] }],
  ['counterfactual: intervention', '/v1/counterfactual', { model: MODEL, intervention: { Price: 12 }, outcome: 'Revenue' }],
  ['counterfactual: 100,000 samples, seed', '/v1/counterfactual', { model: MODEL, outcome: 'Revenue', samples: 100000, seed: 42 }],
  ['counterfactual: evidence', '/v1/counterfactual', { model: MODEL, outcome: 'Revenue', evidence: { Demand: 85 }, samples: 5000, quantiles: [0.1, 0.5, 0.9] }],
  ['counterfactual: threshold (importance sampling)', '/v1/counterfactual', { model: MODEL, outcome: 'Demand', threshold: 95, samples: 4000 }],
  ['counterfactual: target_error', '/v1/counterfactual', { model: MODEL, outcome: 'Revenue', target_error: 2.0, max_samples: 100000 }],
  ['counterfactual: backend gpu (none here)', '/v1/counterfactual', { model: MODEL, outcome: 'Revenue', samples: 1000, backend: 'gpu' }],
  ['counterfactual: 10^12 samples (422)', '/v1/counterfactual', { model: MODEL, outcome: 'Revenue', samples: 1e12 }],
  ['counterfactual: unknown outcome (422)', '/v1/counterfactual', { model: MODEL, outcome: 'Profit' }],
  ['counterfactual: a cycle (422)', '/v1/counterfactual', { model: { nodes: [{ name: 'A', expr: 'B' }, { name: 'B', expr: 'A' }] }, outcome: 'A' }],
  ['sensitivity', '/v1/sensitivity', { model: MODEL, intervention: { Price: 12 }, outcome: 'Revenue' }],
  ['sensitivity: samples 1 (422)', '/v1/sensitivity', { model: MODEL, outcome: 'Revenue', samples: 1 }],
  ['sensitivity: 10^9 samples (422)', '/v1/sensitivity', { model: MODEL, outcome: 'Revenue', samples: 1e9 }],
  ['malformed JSON (400)', '/v1/causal/validate', null, b64('{"dag": {"edges": [["A", "B"]]')],
  ['not base64url (400)', '/v1/counterfactual', null, '!!not*base64'],
  ['bad percent-escape (400)', '/v1/causal/backdoor', null, 'ab%zz'],
  ['missing q (400)', '/v1/sensitivity', null, null],
  ['unknown route (404)', '/v1/nope', { a: 1 }],
  ['openapi.json', '/openapi.json', null, null],
];

// ---------------------------------------------------------------------------------------------

const userDataDir = mkdtempSync(join(tmpdir(), 'isl-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: args.chromium,
  headless: true,
  args: CHROMIUM_FLAGS,
  viewport: { width: 1280, height: 900 },
});
const problems = [];
const page = context.pages()[0] ?? (await context.newPage());
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));

const text = (selector) => page.locator(selector).first().textContent();
const count = (selector) => page.locator(selector).count();
const waitFor = (fn, arg, timeout = 20000) => page.waitForFunction(fn, arg, { timeout });

try {
  // --- Load -----------------------------------------------------------------------------------
  await page.goto(`${pageBase}/`);
  await page.waitForSelector('body[data-ready="yes"]', { timeout: 30000 });
  const readyMs = await page.evaluate(() => Number(document.body.dataset.readyMs));
  console.log(`     page interactive after ${readyMs.toFixed(0)} ms (first load, fresh profile)`);
  check((await page.getAttribute('#page-error', 'hidden')) !== null, 'the page loads without an error');

  // --- The diagram editor: type the front-door example ------------------------------------------
  const typed = 'dag {\n  Smoking [exposure]\n  Cancer [outcome]\n  Smoking -> Tar -> Cancer\n  Smoking <-> Cancer\n}';
  await page.fill('#dag-input', '');
  await page.click('#dag-input');
  await page.keyboard.type(typed);
  try {
    await waitFor(() => document.getElementById('frontdoor-sets').textContent === '{Tar}' && !document.getElementById('dag-error').textContent);
  } catch {
    // The checks below say what is shown instead.
  }
  check((await text('#frontdoor-sets')) === '{Tar}', 'typed front-door example: front-door sets {Tar}', await text('#frontdoor-sets'));
  check((await text('#backdoor-sets')) === 'none', 'typed front-door example: no back-door set', await text('#backdoor-sets'));
  check((await text('#instruments')) === 'none', 'typed front-door example: no instrument', await text('#instruments'));
  check((await text('#identification')).includes('front-door'), 'typed front-door example: identifiable by the front door', await text('#identification'));
  check((await text('#acyclic')) === 'yes', 'typed front-door example: acyclic');
  check((await count('#dag-svg .node.treatment[data-node="Smoking"]')) === 1, 'the drawing highlights the treatment');
  check((await count('#dag-svg .node.outcome[data-node="Cancer"]')) === 1, 'the drawing highlights the outcome');
  check((await count('#dag-svg .edge.bidirected.backdoor-open')) === 1, 'the open back-door path (Smoking <-> Cancer) is drawn as one');
  check((await count('#dag-svg .edge.causal')) === 2, 'the causal path Smoking -> Tar -> Cancer is drawn as one');
  await page.locator('#diagram-panel').screenshot({ path: join(args.out, 'front-door.png') });
  // The sets shown are the server's for the request the page made.
  const link = await page.getAttribute('#validation-link', 'href');
  const shownQ = /[#&]q=([^&]*)/.exec(link)?.[1] ?? '';
  const fromServer = JSON.parse((await serverGet('/v1/causal/validate', `q=${shownQ}`)).body.toString('utf8'));
  check(JSON.stringify(fromServer.identification?.frontdoor_sets) === '[["Tar"]]' && JSON.stringify(fromServer.identification?.backdoor_sets) === '[]', "the server's answer to the page's request has the sets shown", JSON.stringify(fromServer.identification));

  // --- Syntax errors in place --------------------------------------------------------------------
  const errorAt = async (source, line, column, what) => {
    await page.fill('#dag-input', source);
    try {
      await waitFor(([l, c]) => {
        const e = document.getElementById('dag-error');
        return !e.hidden && e.dataset.line === String(l) && e.dataset.column === String(c);
      }, [line, column], 5000);
    } catch {
      // reported below
    }
    const shown = await text('#dag-error');
    check(shown.startsWith(`line ${line}, column ${column}: `) && (await count('#dag-marks mark')) === 1, `${what}: marked at line ${line}, column ${column}`, shown);
  };
  await errorAt('dag {\n  A -> B\n  B ->\n}', 4, 1, 'text: an arrow without a target');
  await errorAt('A -> B\nB -- C', 2, 3, 'text: an undirected edge');
  await errorAt('X [exposure\nY', 2, 1, 'text: an unclosed attribute list');
  await errorAt('{"edges": [["A", "B"],\n  ["B" "C"]]}', 2, 8, 'JSON: a missing comma');
  await errorAt('{"edges": [["A", "B"], ["C"]]}', 1, 24, 'JSON: an edge that is not a pair');

  // --- Adjusting for a back-door set closes the back-door paths ---------------------------------
  await page.click('[data-example="backdoor"]');
  await page.waitForSelector('#backdoor-sets button.set', { timeout: 10000 });
  const openBefore = await count('#dag-svg .edge.backdoor-open');
  await page.click('#backdoor-sets button.set');
  try {
    await waitFor(() => document.querySelectorAll('#dag-svg .edge.backdoor-open').length === 0 && /satisfied/.test(document.getElementById('paths-summary').textContent));
  } catch {
    // reported below
  }
  check(openBefore > 0 && (await count('#dag-svg .edge.backdoor-open')) === 0, `back-door example: ${openBefore} open back-door edges, none after adjusting for ${await text('#backdoor-sets button.set')}`);
  check(/criterion for \{Age, Severity\}: satisfied/.test(await text('#paths-summary')), 'the back-door check of the chosen set is shown', await text('#paths-summary'));

  // --- SCM: run Monte Carlo in the worker ---------------------------------------------------------
  await page.selectOption('#intervention-node', 'Price');
  await page.fill('#intervention-value', '12');
  await page.selectOption('#mc-outcome', 'Profit');
  await page.fill('#mc-samples', '100000');
  await page.click('#run-button');
  try {
    await page.waitForSelector('#tornado .driver', { timeout: 60000 });
  } catch {
    // reported below
  }
  check((await text('#mc-summary')).includes('100,000 samples'), 'counterfactual: the summary shows 100,000 samples', await text('#mc-summary'));
  check((await count('#histogram rect.bar')) === 40, 'counterfactual: a 40-bin histogram');
  check((await count('#histogram line.quantile')) >= 3, 'counterfactual: quantile lines on the histogram');
  check((await count('#quantiles td')) === 5, 'counterfactual: the five default quantiles in the table');
  check((await count('#tornado .driver')) >= 3, 'sensitivity: a tornado chart of the drivers', String(await count('#tornado .driver')));
  const errorShown = await page.getAttribute('#mc-error', 'hidden');
  check(errorShown !== null, 'no Monte Carlo error shown', await text('#mc-error'));
  await page.screenshot({ path: join(args.out, 'demo.png'), fullPage: true });
  console.log(`     screenshots: ${join(args.out, 'front-door.png')}, ${join(args.out, 'demo.png')}`);

  // The worker's path (progress, histogram) answers with the server's bytes.
  const mcLink = await page.getAttribute('#mc-link', 'href');
  const cfJson = unb64(/[#&]q=([^&]*)/.exec(mcLink)?.[1] ?? '');
  const sensJson = JSON.stringify((({ model, intervention, outcome }) => ({ model, intervention, outcome }))(JSON.parse(cfJson)));
  for (const [route, json] of [['/v1/counterfactual', cfJson], ['/v1/sensitivity', sensJson], ['/v1/counterfactual', JSON.stringify({ ...JSON.parse(cfJson), samples: 1e12 })]]) {
    const inPage = await page.evaluate(([r, j]) => window.islDemo.runMc(r, j).then((a) => a.response), [route, json]);
    const server = await serverPost(route, json);
    check(inPage.status === server.status && Buffer.from(inPage.body, 'utf8').equals(server.body), `worker run of ${route} (${server.status}) equals the server's answer byte for byte`);
  }

  // --- Cancel a long run; the tab stays responsive --------------------------------------------------
  await page.fill('#mc-samples', '10000000');
  await page.click('#run-button');
  await waitFor(() => /sampling: [1-9]/.test(document.getElementById('mc-progress-text').textContent), null, 30000);
  const t0 = Date.now();
  await page.evaluate(() => document.getElementById('dag-input').value.length);
  const lag = Date.now() - t0;
  check(lag < 500, `the tab answers during a 10^7-sample run (${lag} ms)`);
  const progressBefore = await page.evaluate(() => document.getElementById('mc-progress').value);
  await page.click('#cancel-button');
  await waitFor(() => /cancelled/.test(document.getElementById('mc-progress-text').textContent), null, 5000);
  check(progressBefore > 0 && progressBefore < 1, `progress was shown before cancelling (${(100 * progressBefore).toFixed(1)} %)`);
  check(!(await page.isDisabled('#run-button')) && (await page.isDisabled('#cancel-button')), 'after cancel: Run enabled, Cancel disabled');
  await page.fill('#mc-samples', '2000');
  await page.click('#run-button');
  await waitFor(() => document.getElementById('mc-summary').textContent.includes('2,000 samples'), null, 30000);
  check(true, 'a run after the cancel completes');
  await page.fill('#mc-samples', '100000000000');
  await page.click('#run-button');
  await waitFor(() => !document.getElementById('mc-error').hidden, null, 10000);
  check(/^422 /.test(await text('#mc-error')), 'a sample count over the limit: the 422 shown in place', await text('#mc-error'));

  // --- The URL contract, byte for byte ------------------------------------------------------------
  for (const [name, route, json, rawQ, compareWith] of CASES) {
    const q = json === null ? rawQ : b64(JSON.stringify(json));
    const query = q === null ? '' : `q=${q}`;
    await page.goto(`${pageBase}/#route=${route}${query ? `&${query}` : ''}`);
    try {
      await waitFor(([r, qs]) => {
        const e = document.getElementById('result');
        return e.dataset.state === 'done' && e.dataset.route === r && e.dataset.query === qs;
      }, [route, query], 30000);
    } catch {
      check(false, `URL contract ${name}: the page answered`);
      continue;
    }
    const status = Number(await text('#status'));
    const body = Buffer.from(await text('#result'), 'utf8');
    const server = compareWith === 'post' ? await serverPost(route, JSON.stringify(json)) : await serverGet(route, query);
    const at = firstDifference(body, server.body);
    check(status === server.status && at === -1, `URL contract ${name}: ${status}, ${body.length} bytes equal to the server's`, at === -1 ? `status ${status} vs ${server.status}` : `first difference at byte ${at}: page ${JSON.stringify(body.subarray(at, at + 60).toString())} server ${JSON.stringify(server.body.subarray(at, at + 60).toString())}`);
  }
  // Model routes: the page has no model runtime (503 models_unavailable); the server may.
  for (const [route, json] of [['/v1/embed', { texts: ['hello'] }], ['/v1/nli', { premise: 'a', hypothesis: 'b' }]]) {
    const query = `q=${b64(JSON.stringify(json))}`;
    await page.goto(`${pageBase}/#route=${route}&${query}`);
    await waitFor(([r, qs]) => document.getElementById('result').dataset.state === 'done' && document.getElementById('result').dataset.route === r && document.getElementById('result').dataset.query === qs, [route, query]);
    const status = Number(await text('#status'));
    const body = JSON.parse(await text('#result'));
    const server = await serverGet(route, query);
    check(status === 503 && body.error?.code === 'models_unavailable', `URL contract ${route}: 503 models_unavailable in the page (the server answered ${server.status}: models run natively only)`);
  }
  // A shared link loads its request into the editor.
  await page.goto('about:blank');
  await page.goto(`${pageBase}/#route=/v1/causal/validate&q=${b64(JSON.stringify({ dag: FRONT, treatment: 'X', outcome: 'Y' }))}`);
  await page.waitForSelector('body[data-ready="yes"]', { timeout: 30000 });
  await waitFor(() => document.getElementById('frontdoor-sets').textContent === '{M}', null, 10000).catch(() => {});
  check((await text('#frontdoor-sets')) === '{M}' && (await page.inputValue('#dag-input')).includes('X [exposure]'), 'a shared validate link loads its graph into the editor');

  // --- Measurements ---------------------------------------------------------------------------------
  if (args.bench) await bench();

  check(problems.length === 0, 'no console errors, warnings or uncaught exceptions', problems.join('\n       '));
} catch (e) {
  check(false, 'the browser test ran to the end', e && e.stack ? e.stack : String(e));
} finally {
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], median: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

async function bench() {
  const work = JSON.parse(readFileSync(args.workloads, 'utf8'));
  const round = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 100) / 100 : v]));
  // Time to interactive: fresh profiles (cold HTTP cache) and reloads.
  const cold = [];
  for (let i = 0; i < 5; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'isl-chromium-'));
    const ctx = await chromium.launchPersistentContext(dir, { executablePath: args.chromium, headless: true, args: CHROMIUM_FLAGS });
    const p = ctx.pages()[0] ?? (await ctx.newPage());
    await p.goto(`${pageBase}/`);
    await p.waitForSelector('body[data-ready="yes"]', { timeout: 30000 });
    cold.push(await p.evaluate(() => Number(document.body.dataset.readyMs)));
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const warm = [];
  for (let i = 0; i < 5; i++) {
    await page.goto('about:blank');
    await page.goto(`${pageBase}/`);
    await page.waitForSelector('body[data-ready="yes"]', { timeout: 30000 });
    warm.push(await page.evaluate(() => Number(document.body.dataset.readyMs)));
  }
  console.log(`BENCH ${JSON.stringify({ what: 'time to interactive (ms)', cold: round(stats(cold)), reload: round(stats(warm)) })}`);

  // validate on 200-node DAGs (isl bench's validate-200 workload), each request once (uncached).
  const inWasm = [];
  const roundTrip = [];
  for (const req of work.validate200) {
    const r = await page.evaluate(async (body) => {
      const t = performance.now();
      const a = await window.islDemo.handle('POST', '/v1/causal/validate', null, 'application/json', body);
      return { elapsed: a.elapsedMs, trip: performance.now() - t, status: a.response.status, cache: a.response.headers.find((h) => h[0] === 'x-cache')?.[1] };
    }, JSON.stringify(req));
    if (r.status !== 200 || r.cache !== 'miss') throw new Error(`validate-200: ${r.status} ${r.cache}`);
    inWasm.push(r.elapsed);
    roundTrip.push(r.trip);
  }
  console.log(`BENCH ${JSON.stringify({ what: 'validate-200 (ms)', in_worker: round(stats(inWasm)), page_round_trip: round(stats(roundTrip)) })}`);

  // 10^5-sample counterfactuals of 10-node models (isl bench's counterfactual-10 workload).
  const service = [];
  const worker = [];
  for (const req of work.counterfactual10) {
    const body = JSON.stringify(req);
    const a = await page.evaluate((b) => window.islDemo.handle('POST', '/v1/counterfactual', null, 'application/json', b).then((x) => ({ ms: x.elapsedMs, status: x.response.status })), body);
    const b = await page.evaluate((b2) => window.islDemo.runMc('/v1/counterfactual', b2).then((x) => ({ ms: x.elapsedMs, status: x.response.status })), body);
    if (a.status !== 200 || b.status !== 200) throw new Error('counterfactual-10 failed');
    service.push(a.ms);
    worker.push(b.ms);
  }
  console.log(`BENCH ${JSON.stringify({ what: 'counterfactual-10, 100000 samples (ms)', service_handle: round(stats(service)), with_progress_and_histogram: round(stats(worker)) })}`);
}

console.log(failures === 0 ? 'browser test: all checks passed' : `browser test: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
