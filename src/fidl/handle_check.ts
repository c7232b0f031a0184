// The check of a handle against the object type and rights its FIDL type declares
// (`zx.Handle:<VMO, zx.Rights.READ>`), run by the encoder on every handle it sends and by the
// decoder on every handle it receives, as FIDL bindings do. The codec itself stays free of native
// code: the transport installs the real check (src/fidl_linux.ts); without one nothing is checked.
import type { Handle } from '../transport/handle';
import { Status } from './errors';

/**
 * Checks that a handle has the object type and rights the FIDL type declares. Returns a zx
 * status: OK, WRONG_TYPE, ACCESS_DENIED (anything else also fails the encode or decode).
 * objType 0 means any type; rights SAME_RIGHTS means no requirement.
 */
export type HandleCheck = (handle: Handle, objType: number, rights: number) => number;

let defaultHandleCheck: HandleCheck | null = null;

/** Installs the check used when an encode or decode is not given one. */
export function setDefaultHandleCheck(check: HandleCheck | null): void {
  defaultHandleCheck = check;
}

export function getDefaultHandleCheck(): HandleCheck | null {
  return defaultHandleCheck;
}

/** What a failed check is called, as FIDL's conformance suite (GIDL) names it. */
export type HandleCheckFailure = 'incorrect_handle_type' | 'missing_required_handle_rights' | 'invalid_handle';

export function handleCheckFailure(status: number): HandleCheckFailure {
  if (status === Status.WRONG_TYPE) return 'incorrect_handle_type';
  if (status === Status.ACCESS_DENIED) return 'missing_required_handle_rights';
  return 'invalid_handle';
}

/** zx_obj_type_t names for messages. */
const OBJ_TYPE_NAMES: Record<number, string> = {
  0: 'NONE', 1: 'PROCESS', 2: 'THREAD', 3: 'VMO', 4: 'CHANNEL', 5: 'EVENT', 6: 'PORT', 9: 'INTERRUPT',
  11: 'PCI_DEVICE', 12: 'LOG', 14: 'SOCKET', 15: 'RESOURCE', 16: 'EVENTPAIR', 17: 'JOB', 18: 'VMAR',
  19: 'FIFO', 20: 'GUEST', 21: 'VCPU', 22: 'TIMER', 23: 'IOMMU', 24: 'BTI', 25: 'PROFILE', 26: 'PMT',
  27: 'SUSPEND_TOKEN', 28: 'PAGER', 29: 'EXCEPTION', 30: 'CLOCK', 31: 'STREAM', 32: 'MSI', 33: 'IOB', 34: 'COUNTER',
};

/** "zx.Handle:EVENTPAIR with rights 0xc" and the like. */
export function describeHandleType(objType: number, rights: number): string {
  const name = OBJ_TYPE_NAMES[objType] ?? `type ${objType}`;
  const r = rights >>> 0;
  return r === 0x80000000 ? `zx.Handle:${name}` : `zx.Handle:${name} with rights 0x${r.toString(16)}`;
}
