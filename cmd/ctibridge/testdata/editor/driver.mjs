// driver.mjs drives headless Chromium for cmd/ctibridge/editor_test.go:
// one page of a fresh profile, remote-controlled by the Go test, which
// decides every step and checks the outcome on the daemon.
//
//   node driver.mjs <node_modules dir> <chromium path> <profile dir> <time limit, seconds>
//
// Requests arrive on stdin, one JSON object a line, {"id":1,"op":…}; each
// gets one reply line on stdout, {"id":1,"ok":true,"result":…} or
// {"id":1,"ok":false,"error":"…"}. Ops: open {url}; eval {js};
// wait {js,timeout}; click {selector}; clickNav {selector};
// fill {selector,value}; type {text}; press {key,count}; select
// {selector,value}; screenshot {path}; logs. The browser closes, and the
// process exits, on EOF, on SIGTERM, or when the time limit is reached.
import { createRequire } from 'node:module';
import readline from 'node:readline';

const [modules, executablePath, profile, limit] = process.argv.slice(2);
const require = createRequire(modules.replace(/\/?$/, '/'));
const { chromium } = require('playwright-core');

// A persistent context on a fresh, empty profile directory: Chromium's
// --user-data-dir, which the test removes afterwards.
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 900 },
  timeout: 30000,
});

let closing = false;
async function quit(code) {
  if (closing) return;
  closing = true;
  await context.close().catch(() => {});
  process.exit(code);
}
setTimeout(() => {
  process.stderr.write(`driver: time limit of ${limit} s reached\n`);
  quit(3);
}, Number(limit || 90) * 1000).unref();
process.on('SIGTERM', () => quit(143));

const page = context.pages()[0] || await context.newPage();
const logs = [];
page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
page.setDefaultTimeout(15000);

const ops = {
  async open({ url }) {
    await page.goto(url, { waitUntil: 'load' });
    return page.url();
  },
  async eval({ js }) {
    return await page.evaluate(js);
  },
  // wait polls js until it is true. Not page.waitForFunction: that
  // evaluates a string with eval inside the page, which the editor's
  // Content-Security-Policy forbids, as it should.
  async wait({ js, timeout }) {
    const deadline = Date.now() + (timeout || 10000);
    let last;
    for (;;) {
      try {
        if (await page.evaluate(js)) return;
      } catch (e) {
        last = e; // a navigation under way, or not yet there
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${js}` + (last ? `: ${last.message}` : ''));
      await new Promise((r) => setTimeout(r, 50));
    }
  },
  async click({ selector }) {
    await page.click(selector);
  },
  // clickNav clicks something that loads another page, and waits for it.
  async clickNav({ selector }) {
    const nav = page.waitForEvent('framenavigated', (f) => f === page.mainFrame());
    await page.click(selector);
    await nav;
    await page.waitForLoadState('load');
    return page.url();
  },
  async fill({ selector, value }) {
    await page.fill(selector, value);
  },
  async type({ text }) {
    await page.keyboard.type(text, { delay: 15 });
  },
  async press({ key, count }) {
    for (let i = 0; i < (count || 1); i++) await page.keyboard.press(key);
  },
  async select({ selector, value }) {
    return await page.selectOption(selector, value);
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
  },
  async logs() {
    return logs;
  },
};

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

reply({ id: 0, ok: true, result: await page.evaluate(() => navigator.userAgent) });

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
