// The built-in chat page at `/` driven in headless Debian Chromium through
// playwright-core: type a prompt, watch the answer stream in, and keep a
// screenshot under $GF_BUILD_DIR/artifacts/chat-page.png as a test artifact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, buildDir, API_KEY } from './serve.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
let srv;
let ctx;
let profile;

before(async () => {
  srv = await startServer();
  profile = mkdtempSync(join(tmpdir(), 'gf-chromium-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 600 },
    timeout: 30000,
  });
});

after(async () => {
  if (ctx) await ctx.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (srv) await srv.stop();
});

test('chat page streams an answer to a typed prompt', async () => {
  const page = await ctx.newPage();
  await page.goto(srv.url + '/');
  assert.match(await page.title(), /ghostflow/i);
  await page.fill('#key', API_KEY);
  await page.dispatchEvent('#key', 'change');
  // The model name comes from /v1/models, fetched once on load before the key
  // was typed: reload so that request carries the stored key.
  await page.reload();
  await page.waitForFunction(() => document.getElementById('model').textContent.length > 0,
    null, { timeout: 10000 });

  // Count the DOM updates of the answer while it streams: more than one
  // distinct text means tokens arrived incrementally, not in one piece.
  await page.evaluate(() => {
    window.gfSeen = new Set();
    new MutationObserver(() => {
      const a = document.querySelector('.msg.assistant');
      if (a) window.gfSeen.add(a.textContent);
    }).observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
  });
  await page.fill('#prompt', 'Once upon a time there was a little dog');
  await page.press('#prompt', 'Enter');
  const answer = page.locator('.msg.assistant');
  await answer.waitFor({ state: 'attached', timeout: 10000 });
  await page.waitForFunction(
    () => document.querySelector('.msg.assistant').dataset.done === '1', null, { timeout: 60000 });

  assert.equal(await page.locator('.msg.error').count(), 0, 'the page shows an error');
  assert.equal(await page.locator('.msg.user').textContent(), 'Once upon a time there was a little dog');
  const text = await answer.textContent();
  assert.ok(text.trim().length > 0, 'empty answer');
  const updates = await page.evaluate(() => window.gfSeen.size);
  assert.ok(updates >= 2, `answer appeared in ${updates} update(s), not streamed`);
  assert.equal(await page.locator('#send').isDisabled(), false);

  const dir = join(buildDir(), 'artifacts');
  mkdirSync(dir, { recursive: true });
  const shot = join(dir, 'chat-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 1000, 'screenshot too small');
});
