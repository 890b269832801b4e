/**
 * The Python processes the tests start: the fake provider (with its control API) and the
 * real Headroom server (`headroom serve`), both from the repository's `.venv`. Each binds
 * 127.0.0.1 only and stops when `stop()` is called or when this test process exits (their
 * standard input closes, see test/launch.py).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The js/ folder: the nearest folder above this file holding tsconfig.json. */
function jsRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'tsconfig.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the js/ folder above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export const JS_ROOT = jsRoot();
export const REPO_ROOT = resolve(JS_ROOT, '..');
const LAUNCHER = join(JS_ROOT, 'test', 'launch.py');

/** The repository's Python (HEADROOM_PYTHON overrides it); a clear error when it is missing. */
export function python(): string {
  const path = process.env.HEADROOM_PYTHON ?? join(REPO_ROOT, '.venv', 'bin', 'python');
  if (!existsSync(path)) {
    throw new Error(
      `the JS tests start the Python server with ${path}, which is missing: run ` +
        '`bash scripts/setup.sh dev` at the repository root first (or set HEADROOM_PYTHON ' +
        'to a python with headroom-context[server,dev] installed)',
    );
  }
  return path;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A started launcher process; `stop()` ends it and waits for it. */
export class Launched {
  readonly #child: ChildProcess;
  readonly #log: string[];

  constructor(child: ChildProcess, log: string[]) {
    this.#child = child;
    this.#log = log;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get output(): string {
    return this.#log.join('');
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (this.exited) {
      running.delete(child);
      return;
    }
    const done = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
    child.stdin?.end(); // the launcher's own way out; SIGTERM, then SIGKILL, if it lingers
    const term = setTimeout(() => child.kill('SIGTERM'), 5_000);
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await done;
    clearTimeout(term);
    clearTimeout(kill);
    running.delete(child);
  }
}

/**
 * Starts `launch.py ARGS` and waits until a line of its output matches `ready`
 * (stdout and stderr both read); resolves with the process and the match.
 */
export async function launch(
  args: string[],
  ready: RegExp,
  what: string,
  env: Record<string, string> = {},
): Promise<[Launched, RegExpMatchArray]> {
  const child = spawn(python(), [LAUNCHER, ...args], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      ...env,
      PYTHONPATH: [REPO_ROOT, process.env.PYTHONPATH].filter(Boolean).join(':'),
      PYTHONUNBUFFERED: '1',
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const log: string[] = [];
  const launched = new Launched(child, log);
  const match = await new Promise<RegExpMatchArray>((resolveMatch, reject) => {
    const timer = setTimeout(() => fail(`${what} did not start within 60 s`), 60_000);
    function fail(message: string): void {
      clearTimeout(timer);
      reject(new Error(`${message}; its output:\n${log.join('').slice(-4000)}`));
    }
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => {
        log.push(line + '\n');
        if (log.length > 500) log.splice(0, log.length - 500);
        const m = line.match(ready);
        if (m) {
          clearTimeout(timer);
          resolveMatch(m);
        }
      });
    }
    child.once('error', (err) => fail(`${what} could not be started (${err.message})`));
    child.once('exit', (code, signal) => fail(`${what} exited (code ${code}, signal ${signal})`));
  }).catch(async (err: unknown) => {
    await launched.stop();
    throw err;
  });
  return [launched, match];
}
