// driver.mjs drives headless Chromium for the browser tests of
// cmd/ctibridge (bridge_test.go, editor_test.go). It is a thin remote
// control: the Go test decides every step and checks the outcome on the
// daemon, not on what the browser says.
//
//   node driver.mjs <node_modules dir> <chromium path> <time limit, seconds>
//
// Requests arrive on stdin, one JSON object a line, {"id":1,"op":…}; each
// gets one reply line on stdout, {"id":1,"ok":true,"result":…} or
// {"id":1,"ok":false,"error":"…"}. Ops: context {ctx}; open {ctx,page,url}
// (a new page, or the same page to another URL; returns the URL); eval
// {page,js}; wait {page,js,timeout}; reload {page}; close {page};
// closeContext {ctx}; cookies {ctx}; logs {page}; click, clickNav (a click that loads a
// page; returns its URL), fill {page,selector,value}; type {page,text};
// press {page,key,count}; select {page,selector,value}; screenshot
// {page,path}. The browser closes, and the process exits, on EOF, on
// SIGTERM, or when the time limit is reached.
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
    contexts.set(ctx, await browser.newContext({ viewport: { width: 1440, height: 900 } }));
  },
  async open({ ctx, page, url }) {
    let p = pages.get(page);
    if (!p) {
      p = await must(contexts, ctx, 'context').newPage();
      p.setDefaultTimeout(15000);
      const lines = [];
      logs.set(page, lines);
      p.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
      p.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
      pages.set(page, p);
    }
    await p.goto(url, { waitUntil: 'load' });
    return p.url();
  },
  async eval({ page, js }) {
    return await must(pages, page, 'page').evaluate(js);
  },
  // wait polls js until it is true. Not page.waitForFunction: that
  // evaluates a string with eval inside the page, which a strict
  // Content-Security-Policy (the editor's) forbids, as it should.
  async wait({ page, js, timeout }) {
    const p = must(pages, page, 'page');
    const deadline = Date.now() + (timeout || 10000);
    let last;
    for (;;) {
      try {
        if (await p.evaluate(js)) return;
      } catch (e) {
        last = e; // a navigation under way, or not yet there
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${js}` + (last ? `: ${last.message}` : ''));
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  async click({ page, selector }) {
    await must(pages, page, 'page').click(selector);
  },
  async clickNav({ page, selector }) {
    const p = must(pages, page, 'page');
    const nav = p.waitForEvent('framenavigated', (f) => f === p.mainFrame());
    await p.click(selector);
    await nav;
    await p.waitForLoadState('load');
    return p.url();
  },
  async fill({ page, selector, value }) {
    await must(pages, page, 'page').fill(selector, value);
  },
  async type({ page, text }) {
    await must(pages, page, 'page').keyboard.type(text, { delay: 15 });
  },
  async press({ page, key, count }) {
    const p = must(pages, page, 'page');
    for (let i = 0; i < (count || 1); i++) await p.keyboard.press(key);
  },
  async select({ page, selector, value }) {
    return await must(pages, page, 'page').selectOption(selector, value);
  },
  async screenshot({ page, path }) {
    await must(pages, page, 'page').screenshot({ path, fullPage: true });
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
  async cookies({ ctx }) {
    return await must(contexts, ctx, 'context').cookies();
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
