/**
 * headroom-context for JavaScript / TypeScript: `withHeadroom()` wraps an OpenAI or Anthropic
 * SDK client so that its requests are compressed by a Headroom server (`headroom serve`)
 * before they go out with your own client.
 */
export { withHeadroom } from './wrap.js';
export {
  DEFAULT_BASE_URL,
  DEFAULT_TIMEOUT_MS,
  MODES,
  type CompressionStats,
  type HeadroomLogger,
  type HeadroomMode,
  type HeadroomOptions,
} from './options.js';
