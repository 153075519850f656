/**
 * The types of a service as the outside sees it, through the membrane.
 *
 * | inside the service                          | outside (Remote)                                   |
 * | ------------------------------------------- | -------------------------------------------------- |
 * | a function `(a: A) => R` or `=> Promise<R>` | `(a: A) => Promise<Returned<R>>`: always a promise |
 * | an object with methods (class instance too) | a reference: its methods only, each as above       |
 * | data: primitives, arrays, plain objects,    | a copy of the same shape; references inside it     |
 * | Date, Map, Set, RegExp, Error, typed arrays | stay references                                    |
 *
 * Data properties of a reference are not readable from outside (only its
 * methods are), so `RemoteObject` leaves them out. A service's namespace is
 * read synchronously: its data exports are copies, its functions and
 * objects with methods are references.
 */

// `any` is needed here for function types to be assignable (parameters are
// contravariant); it never reaches a value a user holds.
type AnyFunction = (...args: any[]) => unknown;

/** Objects the membrane copies whole although their types have methods. */
type CopiedBuiltin = Date | RegExp | Error | ArrayBuffer | ArrayBufferView;

/** The keys of T whose values are functions (its methods). */
type MethodKeys<T> = { [K in keyof T]-?: T[K] extends AnyFunction ? K : never }[keyof T];

/** A function of a service, called from outside: every call is asynchronous. */
export type RemoteFunction<F extends AnyFunction> = (...args: Parameters<F>) => Promise<Returned<Awaited<ReturnType<F>>>>;

/** A reference to an object with methods: only its methods, each returning a promise. */
export type RemoteObject<T> = { readonly [K in MethodKeys<T>]: T[K] extends AnyFunction ? RemoteFunction<T[K]> : never };

/** A value as it arrives outside: data copied (recursively), functions and objects with methods as references. */
export type Returned<T> = T extends AnyFunction
  ? RemoteFunction<T>
  : T extends CopiedBuiltin
    ? T
    : T extends ReadonlyMap<infer K, infer V>
      ? Map<Returned<K>, Returned<V>>
      : T extends ReadonlySet<infer V>
        ? Set<Returned<V>>
        : T extends readonly unknown[]
          ? { [I in keyof T]: Returned<T[I]> }
          : T extends object
            ? [MethodKeys<T>] extends [never]
              ? { [K in keyof T]: Returned<T[K]> }
              : RemoteObject<T>
            : T;

/**
 * A service as `importService` returns it. `T` is the service module's type
 * (`typeof import('./svc.js')`) or any interface describing its exports.
 */
export type Remote<T> = { readonly [K in keyof T]: Returned<T[K]> };

/** The exports of a service whose type was not given: every export may be called, results are unknown. */
export type UntypedService = Record<string, (...args: unknown[]) => unknown>;
