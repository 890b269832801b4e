/** The fake provider (tests/integrations/provider_server.py) and its control API. */
import { launch, type Launched } from './processes.js';

export interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, any>;
}

export interface ReplyScript {
  text?: string;
  tool_calls?: [string, string, Record<string, unknown>][];
  input_tokens?: number;
  output_tokens?: number;
}

export class FakeProvider {
  readonly port: number;
  readonly #control: string;
  readonly #process: Launched;

  private constructor(process: Launched, port: number, control: number) {
    this.#process = process;
    this.port = port;
    this.#control = `http://127.0.0.1:${control}`;
  }

  static async start(): Promise<FakeProvider> {
    const [process, match] = await launch(['provider'], /^(\{"provider".*\})$/, 'the fake provider');
    const ports = JSON.parse(match[1] as string) as { provider: number; control: number };
    return new FakeProvider(process, ports.provider, ports.control);
  }

  /** The Anthropic SDK's baseURL. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The OpenAI SDK's baseURL. */
  get openaiBaseUrl(): string {
    return `${this.baseUrl}/v1`;
  }

  async #post(path: string, body: unknown = {}): Promise<void> {
    const response = await fetch(this.#control + path, { method: 'POST', body: JSON.stringify(body) });
    if (!response.ok) throw new Error(`control ${path}: ${response.status} ${await response.text()}`);
  }

  async requests(): Promise<Received[]> {
    const response = await fetch(`${this.#control}/requests`);
    return (await response.json()) as Received[];
  }

  /** The one request received since the last reset (fails if there were more or none). */
  async only(): Promise<Received> {
    const all = await this.requests();
    if (all.length !== 1) throw new Error(`expected 1 request upstream, got ${all.length}`);
    return all[0] as Received;
  }

  reset(): Promise<void> {
    return this.#post('/reset');
  }

  queueReply(script: ReplyScript): Promise<void> {
    return this.#post('/queue_reply', script);
  }

  queueError(status: number, message?: string): Promise<void> {
    return this.#post('/queue_error', { status, message, headers: { 'x-should-retry': 'false' } });
  }

  stop(): Promise<void> {
    return this.#process.stop();
  }
}
