/**
 * `withHeadroom(client, options)`: a `Proxy` around the caller's SDK client. The compressed
 * method (`chat.completions.create`, `messages.create`) is ours; every other method and
 * property is the SDK's own. The resource that holds the compressed method sees the wrapped
 * client as its `_client` and the wrapped `create` as its own, so the SDKs' helpers built on
 * `create` (`chat.completions.stream` / `parse` / `runTools`, `messages.stream` / `parse`)
 * are compressed as well.
 */
import { Engine } from './engine.js';
import { type HeadroomOptions, resolveOptions } from './options.js';
import { ANTHROPIC_MESSAGES, OPENAI_CHAT, type Surface } from './surfaces.js';

type Obj = Record<PropertyKey, unknown>;
type Fn = (...args: unknown[]) => unknown;

/** An SDK client kind we know how to wrap (one entry per SDK, tried in order). */
interface ClientKind {
  readonly name: string;
  /** The path from the client to the resource whose `create` we compress. */
  readonly path: readonly string[];
  readonly surface: Surface;
}

const KINDS: readonly ClientKind[] = [
  { name: 'openai', path: ['chat', 'completions'], surface: OPENAI_CHAT },
  { name: 'anthropic', path: ['messages'], surface: ANTHROPIC_MESSAGES },
];

/** wrapped client -> the client it wraps (re-wrapping replaces the options, never stacks). */
const UNWRAPPED = new WeakMap<object, object>();

function resourceAt(client: unknown, path: readonly string[]): Obj | undefined {
  let node: unknown = client;
  for (const key of path) {
    if ((typeof node !== 'object' && typeof node !== 'function') || node === null) return undefined;
    node = (node as Obj)[key];
  }
  return typeof node === 'object' && node !== null && typeof (node as Obj).create === 'function'
    ? (node as Obj)
    : undefined;
}

/**
 * A view of `target` where `overrides` replace some properties. With `bindToTarget`, methods
 * run with `this` = the real object (an SDK client keeps `#private` fields, which a Proxy
 * cannot reach); without it, with `this` = the view, so the object's own calls to
 * `this.create` / `this._client` reach the overrides.
 */
function overlay<T extends object>(target: T, overrides: Obj, bindToTarget: boolean): T {
  const bound = new WeakMap<Fn, Fn>();
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop];
      const value = Reflect.get(t, prop, bindToTarget ? t : receiver);
      if (!bindToTarget || typeof value !== 'function' || prop === 'constructor') return value;
      let fn = bound.get(value as Fn);
      if (fn === undefined) {
        fn = (value as Fn).bind(t);
        bound.set(value as Fn, fn);
      }
      return fn;
    },
  });
}

function wrapClient<T extends object>(
  client: T,
  kind: ClientKind,
  engine: Engine,
  options: HeadroomOptions,
): T {
  const { path } = kind;
  // nodes[i]: the object at path[0..i) (nodes[0] is the client, the last one the resource).
  const nodes: Obj[] = [client as Obj];
  for (const key of path) nodes.push((nodes[nodes.length - 1] as Obj)[key] as Obj);
  const resource = nodes[path.length] as Obj;
  const clientOverrides: Obj = {};
  const wrapped = overlay(client, clientOverrides, true);
  const create = engine.wrap(kind.surface, (resource.create as Fn).bind(resource));
  let view: object = overlay(resource, { create, _client: wrapped }, false);
  for (let i = path.length - 1; i >= 1; i--) {
    view = overlay(nodes[i] as Obj, { [path[i] as string]: view }, true);
  }
  clientOverrides[path[0] as string] = view;
  const withOptions = (client as Obj).withOptions;
  if (typeof withOptions === 'function') {
    // A copy of the client with other SDK options is wrapped like this one.
    clientOverrides.withOptions = (...args: unknown[]) =>
      withHeadroom((withOptions as Fn).apply(client, args) as object, options);
  }
  UNWRAPPED.set(wrapped, client);
  return wrapped;
}

/**
 * Wraps an `openai` `OpenAI` / `AzureOpenAI` client or an `@anthropic-ai/sdk` `Anthropic`
 * client: requests through `chat.completions.create` / `messages.create` (streaming, and the
 * SDK helpers built on them, included) have their messages compressed by the Headroom server's
 * `/v1/compress`, then go out with your own client, your key and your options. Everything else
 * is the SDK's own. When the server is unreachable, slower than `timeoutMs` or answers an
 * error, the request goes out unchanged (one warning per client).
 */
export function withHeadroom<T extends object>(client: T, options: HeadroomOptions = {}): T {
  const inner = (UNWRAPPED.get(client) ?? client) as T;
  const resolved = resolveOptions(options);
  const kind = KINDS.find((k) => resourceAt(inner, k.path) !== undefined);
  if (kind === undefined) {
    throw new TypeError(
      'withHeadroom: expected an OpenAI / AzureOpenAI client (from "openai", with ' +
        'chat.completions.create) or an Anthropic client (from "@anthropic-ai/sdk", with messages.create)',
    );
  }
  return wrapClient(inner, kind, new Engine(resolved), options);
}
