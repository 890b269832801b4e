/**
 * A recording HTTP hop between the client and the Headroom server, on 127.0.0.1: it records
 * every request it sees (to check what reached our server) and either forwards it, holds it
 * longer than a client's timeout, or answers an error itself.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export type GateMode =
  { kind: 'forward' } | { kind: 'hold'; ms: number } | { kind: 'status'; status: number; body: string };

export class Gate {
  readonly seen: Seen[] = [];
  mode: GateMode = { kind: 'forward' };
  readonly #server: Server;
  readonly #target: URL;
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server, target: string) {
    this.#server = server;
    this.#target = new URL(target);
  }

  static async start(target: string): Promise<Gate> {
    let gate: Gate | undefined;
    const server = createServer((req, res) => void gate!.handle(req, res));
    gate = new Gate(server, target);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    return gate;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    this.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: { ...req.headers },
      body: body.toString(),
    });
    const mode = this.mode;
    if (mode.kind === 'status') {
      res.writeHead(mode.status, { 'content-type': 'application/json' }).end(mode.body);
      return;
    }
    if (mode.kind === 'hold') {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        res.destroy();
      }, mode.ms);
      this.#timers.add(timer);
      return;
    }
    const upstream = request(
      {
        host: this.#target.hostname,
        port: this.#target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.#target.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => res.writeHead(502).end(String(err)));
    upstream.end(body);
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((ok) => this.#server.close(() => ok()));
  }
}
