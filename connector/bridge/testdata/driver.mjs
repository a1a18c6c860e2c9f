// driver.mjs drives headless Chromium for cmd/ctibridge/bridge_test.go.
// It is a thin remote control: the Go test decides every step and checks
// the outcome on the daemon, not on what the browser says.
//
//   node driver.mjs <node_modules dir> <chromium path> <time limit, seconds>
//
// Requests arrive on stdin, one JSON object a line, {"id":1,"op":…}; each
// gets one reply line on stdout, {"id":1,"ok":true,"result":…} or
// {"id":1,"ok":false,"error":"…"}. Ops: context {ctx}; open {ctx,page,url};
// eval {page,js}; wait {page,js,timeout}; reload {page}; close {page};
// closeContext {ctx}; logs {page}. The browser closes, and the process
// exits, on EOF, on SIGTERM, or when the time limit is reached.
import { createRequire } from 'node:module';
import readline from 'node:readline';

const [modules, executablePath, limit] = process.argv.slice(2);
const require = createRequire(modules.replace(/\/?$/, '/'));
const { chromium } = require('playwright-core');

// Playwright gives each launched browser a fresh temporary
// --user-data-dir (under TMPDIR, which the test sets to its own directory)
// and refuses one in args.
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  timeout: 30000,
});

let closing = false;
async function quit(code) {
  if (closing) return;
  closing = true;
  await browser.close().catch(() => {});
  process.exit(code);
}
setTimeout(() => {
  process.stderr.write(`driver: time limit of ${limit} s reached\n`);
  quit(3);
}, Number(limit || 120) * 1000).unref();
process.on('SIGTERM', () => quit(143));

const contexts = new Map();
const pages = new Map();
const logs = new Map();

function must(map, key, what) {
  const v = map.get(key);
  if (!v) throw new Error(`no ${what} ${key}`);
  return v;
}

const ops = {
  async context({ ctx }) {
    contexts.set(ctx, await browser.newContext());
  },
  async open({ ctx, page, url }) {
    const p = await must(contexts, ctx, 'context').newPage();
    const lines = [];
    logs.set(page, lines);
    p.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
    p.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
    pages.set(page, p);
    await p.goto(url, { waitUntil: 'load' });
  },
  async eval({ page, js }) {
    return await must(pages, page, 'page').evaluate(js);
  },
  async wait({ page, js, timeout }) {
    await must(pages, page, 'page').waitForFunction(js, null, { timeout: timeout || 10000, polling: 50 });
  },
  async reload({ page }) {
    const p = must(pages, page, 'page');
    logs.get(page).push('--- reload ---');
    await p.reload({ waitUntil: 'load' });
  },
  async close({ page }) {
    await must(pages, page, 'page').close();
    pages.delete(page);
  },
  async closeContext({ ctx }) {
    await must(contexts, ctx, 'context').close();
    contexts.delete(ctx);
  },
  async logs({ page }) {
    return logs.get(page) || [];
  },
};

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

reply({ id: 0, ok: true, result: browser.version() });

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    reply({ id: -1, ok: false, error: `bad request line: ${e.message}` });
    return;
  }
  try {
    const op = ops[req.op];
    if (!op) throw new Error(`unknown op ${req.op}`);
    const result = await op(req);
    reply({ id: req.id, ok: true, result: result === undefined ? null : result });
  } catch (e) {
    reply({ id: req.id, ok: false, error: String(e && e.message || e) });
  }
});
rl.on('close', () => quit(0));
