// Drives headless Debian Chromium for the browser and web-page tests, one JSON command per
// stdin line (tests/browser/chromium.py and tests/web/pages.py are its Python side): a fresh
// profile and viewport per named browser, JS evaluation, screenshots, real keyboard and mouse
// input, and the console errors each page logged. Page console output goes to stderr,
// prefixed with the browser's name.
// Commands ({"id", "cmd", ...}; replies {"id", "ok", "value"|"error"} on stdout):
//   open {name, url, width?, height?, deny?}  fresh profile; deny: true refuses camera/mic
//   goto {name, url}        eval {name, expr}      screenshot {name, path, fullPage?}
//   press {name, key}       click {name, selector} fill {name, selector, text}
//   errors {name}           close {name}           quit
// playwright-core drives /usr/bin/chromium; no browser is ever downloaded.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'peers', 'package.json'));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.VIDHUB_CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const browsers = new Map(); // name -> {context, page, dir, errors}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function open(msg) {
  const { name, url } = msg;
  const dir = mkdtempSync(join(tmpdir(), 'vidhub-chromium-'));
  // --use-fake-ui-for-media-stream grants camera/mic; without it (deny) headless refuses them
  const args = msg.deny ? FLAGS : [...FLAGS, '--use-fake-ui-for-media-stream'];
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: msg.width || 1280, height: msg.height || 720 },
    deviceScaleFactor: 1,
  });
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on('console', (m) => {
    process.stderr.write(`[${name}] ${m.type()}: ${m.text()}\n`);
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => {
    process.stderr.write(`[${name}] pageerror: ${e}\n`);
    errors.push(String(e));
  });
  browsers.set(name, { context, page, dir, errors });
  if (url) await page.goto(url);
  return true;
}

async function close(name) {
  const b = browsers.get(name);
  if (!b) return false;
  browsers.delete(name);
  await b.context.close();
  rmSync(b.dir, { recursive: true, force: true });
  return true;
}

function get(name) {
  const b = browsers.get(name);
  if (!b) throw new Error(`no browser named ${name}`);
  return b;
}

async function handle(msg) {
  switch (msg.cmd) {
    case 'open':
      return open(msg);
    case 'goto':
      await get(msg.name).page.goto(msg.url);
      return true;
    case 'eval':
      return get(msg.name).page.evaluate(`(async () => (${msg.expr}))()`);
    case 'screenshot':
      await get(msg.name).page.screenshot({ path: msg.path, fullPage: !!msg.fullPage });
      return msg.path;
    case 'press':
      await get(msg.name).page.keyboard.press(msg.key);
      return true;
    case 'click':
      await get(msg.name).page.click(msg.selector);
      return true;
    case 'fill':
      await get(msg.name).page.fill(msg.selector, msg.text);
      return true;
    case 'errors':
      return get(msg.name).errors;
    case 'close':
      return close(msg.name);
    case 'quit':
      for (const name of [...browsers.keys()]) await close(name);
      return true;
    default:
      throw new Error(`unknown command ${msg.cmd}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    reply({ id: null, ok: false, error: `bad command: ${e}` });
    return;
  }
  const run = async () => {
    try {
      reply({ id: msg.id, ok: true, value: (await handle(msg)) ?? null });
    } catch (e) {
      reply({ id: msg.id, ok: false, error: String(e && e.stack ? e.stack : e) });
    }
    if (msg.cmd === 'quit') process.exit(0);
  };
  if (msg.cmd === 'quit') chain = chain.then(run);
  else run();
});
rl.on('close', async () => {
  for (const name of [...browsers.keys()]) await close(name);
  process.exit(0);
});
