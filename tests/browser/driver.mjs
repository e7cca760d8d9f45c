// Drives headless Debian Chromium for the browser tests, one JSON command per stdin line.
//
// Commands: {"id", "cmd": "open", "name", "url"} starts a browser with a fresh profile and
// opens url; {"cmd": "eval", "name", "expr"} awaits a JS expression in that page and returns
// its JSON value; {"cmd": "close", "name"}; {"cmd": "quit"}. Each reply is one stdout line:
// {"id", "ok": true, "value"} or {"id", "ok": false, "error"}. Page console output goes to
// stderr, prefixed with the browser's name.
//
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
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const browsers = new Map(); // name -> {context, page, dir}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function open(name, url) {
  const dir = mkdtempSync(join(tmpdir(), 'vidhub-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => process.stderr.write(`[${name}] ${m.type()}: ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`[${name}] pageerror: ${e}\n`));
  browsers.set(name, { context, page, dir });
  await page.goto(url);
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

async function handle(msg) {
  switch (msg.cmd) {
    case 'open':
      return open(msg.name, msg.url);
    case 'eval': {
      const b = browsers.get(msg.name);
      if (!b) throw new Error(`no browser named ${msg.name}`);
      return b.page.evaluate(`(async () => (${msg.expr}))()`);
    }
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
  // commands for different browsers run concurrently; replies carry the id
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
