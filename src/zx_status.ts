// zx.Status values as the project uses them, taken from the generated zx library (fidl/zx.fidl is
// the one place the numbers are written), with their names for logs and error messages.
import * as zx from './gen/zx';

export const ZX = {
  OK: zx.OK,
  INTERNAL: zx.ERR_INTERNAL,
  NOT_SUPPORTED: zx.ERR_NOT_SUPPORTED,
  NO_RESOURCES: zx.ERR_NO_RESOURCES,
  NO_MEMORY: zx.ERR_NO_MEMORY,
  INVALID_ARGS: zx.ERR_INVALID_ARGS,
  BAD_HANDLE: zx.ERR_BAD_HANDLE,
  WRONG_TYPE: zx.ERR_WRONG_TYPE,
  OUT_OF_RANGE: zx.ERR_OUT_OF_RANGE,
  BAD_STATE: zx.ERR_BAD_STATE,
  PEER_CLOSED: zx.ERR_PEER_CLOSED,
  NOT_FOUND: zx.ERR_NOT_FOUND,
  ALREADY_EXISTS: zx.ERR_ALREADY_EXISTS,
  ACCESS_DENIED: zx.ERR_ACCESS_DENIED,
  IO: zx.ERR_IO,
  IO_DATA_INTEGRITY: zx.ERR_IO_DATA_INTEGRITY,
  FILE_BIG: zx.ERR_FILE_BIG,
} as const;

const NAMES = new Map<number, string>(Object.entries(ZX).map(([name, value]) => [value, name === 'OK' ? 'ZX_OK' : `ZX_ERR_${name}`]));

/** "ZX_ERR_INVALID_ARGS (-10)" for logs and error messages. */
export function statusName(status: number): string {
  return `${NAMES.get(status) ?? 'status'} (${status})`;
}
