/** The real Headroom server (`headroom serve`, the repository's Python) in front of a provider. */
import { launch, type Launched } from './processes.js';

export interface ServerOptions {
  /** Where the server forwards provider calls (unused by /v1/compress, but set like a user would). */
  providerBaseUrl: string;
  /** HEADROOM_SERVER_TOKEN for the server process. */
  token?: string;
}

export class HeadroomServer {
  readonly url: string;
  readonly #process: Launched;

  private constructor(process: Launched, url: string) {
    this.#process = process;
    this.url = url;
  }

  static async start(options: ServerOptions): Promise<HeadroomServer> {
    const args = [
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--store',
      '',
      '--openai-base-url',
      `${options.providerBaseUrl}/v1`,
      '--anthropic-base-url',
      options.providerBaseUrl,
      '--log-level',
      'info',
    ];
    const env: Record<string, string> =
      options.token === undefined ? {} : { HEADROOM_SERVER_TOKEN: options.token };
    const ready = /Uvicorn running on (http:\/\/127\.0\.0\.1:\d+)/;
    const [launched, match] = await launch(args, ready, 'headroom serve', env);
    return new HeadroomServer(launched, match[1] as string);
  }

  stop(): Promise<void> {
    return this.#process.stop();
  }
}
