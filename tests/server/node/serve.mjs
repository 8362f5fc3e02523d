// Starts `ghostflow serve` for the Node tests: a fresh database in a temporary
// directory, port 0, and the address taken from the "listening on" line the
// server prints first. Shared by openai.test.mjs and chat_page.test.mjs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MODEL = '../shared/models/stories260K.gguf';
export const API_KEY = 'node-test-api-key';

export function buildDir() {
  const dir = process.env.GF_BUILD_DIR;
  if (!dir) throw new Error('GF_BUILD_DIR is not set (run through ctest)');
  return dir;
}

// Resolves with {url, stop()} once the server listens; rejects if it exits
// first or prints nothing within the deadline (the default KDF takes seconds).
export function startServer({ parallel = 2, timeoutMs = 60000 } = {}) {
  if (!existsSync(MODEL))
    throw new Error(`${MODEL} is missing: run from the repository root with ../shared present`);
  const prog = join(buildDir(), 'ghostflow');
  if (!existsSync(prog)) throw new Error(`${prog} is missing: build the ghostflow target`);
  const dir = mkdtempSync(join(tmpdir(), 'gf-node-'));
  const child = spawn(prog, ['serve', '-m', MODEL, '--db', join(dir, 'serve.db'),
    '--port', '0', '--parallel', String(parallel), '--ctx', '512', '-t', '1',
    '--timeout', '60'], {
    env: { ...process.env, GHOSTFLOW_KEY: 'node-test-db-key', GHOSTFLOW_API_KEY: API_KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  // Stops the server with SIGTERM and rejects unless it exits 0, so a crash
  // or a sanitizer report in the server fails the test that started it.
  const stop = () => new Promise((resolve, reject) => {
    const done = () => {
      rmSync(dir, { recursive: true, force: true });
      if (child.exitCode === 0) resolve();
      else reject(new Error(`ghostflow serve exited with ${child.exitCode ?? child.signalCode}: ${stderr}`));
    };
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', done);
    child.kill('SIGTERM');
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      const err = new Error(`ghostflow serve did not listen in ${timeoutMs} ms: ${stderr}`);
      stop().then(() => reject(err), () => reject(err));
    }, timeoutMs);
    const onExit = (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      reject(new Error(`ghostflow serve exited (${code}) before listening: ${stderr}`));
    };
    child.once('exit', onExit);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^listening on (http:\/\/\S+)\n/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      resolve({ url: m[1], stop, stderr: () => stderr });
    });
  });
}
