/**
 * `PendingCall`: what a wrapped `create()` returns while the compression runs. It awaits like
 * the SDK's own `APIPromise` and keeps that promise's extra methods (`withResponse()`,
 * `asResponse()`, `_thenUnwrap()`, which the SDKs' `stream()` / `parse()` helpers use), each
 * applied to the SDK's promise once the request has gone out.
 *
 * Like `APIPromise` it is lazy: nothing is read until someone awaits it or calls a method, so
 * a caller that only uses `withResponse()` never leaves an unhandled rejection behind.
 */

/** The SDK call, started once the request body is ready (boxed: never awaited by accident). */
export type Started = Promise<{ readonly value: unknown }>;

function method(target: unknown, name: string): (...args: unknown[]) => unknown {
  const fn = (target as Record<string, unknown> | null)?.[name];
  if (typeof fn !== 'function') {
    throw new TypeError(`headroom: the SDK's create() result has no ${name}() method`);
  }
  return (fn as (...args: unknown[]) => unknown).bind(target);
}

export class PendingCall<T> extends Promise<T> {
  // then() on a PendingCall gives plain promises.
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }

  readonly #started: Started;
  #result: Promise<T> | undefined;

  constructor(started: Started) {
    super((resolve) => resolve(undefined as T));
    this.#started = started;
    started.catch(() => undefined); // read lazily, below: never an unhandled rejection here
  }

  override then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.#result ??= this.#started.then((s) => s.value as T);
    return this.#result.then(onfulfilled, onrejected);
  }

  withResponse(): Promise<unknown> {
    return this.#started.then((s) => method(s.value, 'withResponse')());
  }

  asResponse(): Promise<unknown> {
    return this.#started.then((s) => method(s.value, 'asResponse')());
  }

  _thenUnwrap<U>(transform: (data: T, props: unknown) => U): PendingCall<U> {
    return new PendingCall<U>(
      this.#started.then((s) => ({ value: method(s.value, '_thenUnwrap')(transform) })),
    );
  }
}
