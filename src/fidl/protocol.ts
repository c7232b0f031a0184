// Protocol descriptors: what generated bindings tell the client and server runtimes about each
// method (ordinal, direction, strictness, payload coding tables), plus the Result type of
// methods declared with `error`.
import { FidlType, UnionDecl, frameworkErr, union } from './types';

export type MethodKind = 'oneway' | 'twoway' | 'event';

export interface MethodDesc {
  /** FIDL method name, e.g. "RegisterFile". */
  readonly name: string;
  readonly ordinal: bigint;
  readonly kind: MethodKind;
  /** Strict methods may not be unknown to the peer; flexible ones may (dynamic flag 0x80). */
  readonly strict: boolean;
  /** Body of the request (or of the event); null for a header-only message. */
  readonly payload: FidlType | null;
  /** Body of a two-way reply as it is on the wire (a result union if flexible or with error). */
  readonly response: FidlType | null;
  /** The method declares `error`: clients see a Result, handlers return one. */
  readonly hasError: boolean;
  /** The success payload is the empty struct of `-> ()`: clients get undefined, handlers return nothing. */
  readonly emptySuccess?: boolean;
}

export type Openness = 'open' | 'ajar' | 'closed';

export interface ProtocolDesc {
  /** Fully qualified FIDL name, e.g. "fuchsia.starnix.runner/Pager". */
  readonly name: string;
  /** Name under which a @discoverable protocol is served (e.g. a socket in a service dir), else null. */
  readonly discoverableName: string | null;
  readonly openness: Openness;
  readonly methods: readonly MethodDesc[];
}

/** The reply is a result union (variants response/err/framework_err) rather than the bare payload. */
export function usesResultUnion(m: MethodDesc): boolean {
  return m.kind === 'twoway' && (!m.strict || m.hasError);
}

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}
export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/** What a handler may return: the value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** What a generated union value looks like: the member name and its value. */
export interface UnionValue<Tag extends string, V> {
  tag: Tag;
  value: V;
}
/** A flexible union member this side does not know (its bytes were skipped, handles closed). */
export interface UnknownUnionValue {
  tag: '$unknown';
  ordinal: bigint;
}

/**
 * The reply a server sends for an unknown flexible two-way method: a result union whose only
 * member used is 3 (framework_err) = UNKNOWN_METHOD. The other members do not matter for encoding.
 */
export const unknownMethodReply: FidlType = union(
  new UnionDecl('fidl/UnknownMethodResult', false, true, true, () => [{ ordinal: 3, name: 'frameworkErr', type: frameworkErr }]),
);

/** Walks a value and closes every handle in it (it lives with the encoder, which uses it too). */
export { closeHandlesIn } from './encoder';
