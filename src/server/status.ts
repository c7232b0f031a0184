// zx.Status values the servers answer with (the numbers are the wire values; protocol.md).
export const ZX = {
  OK: 0,
  INTERNAL: -1,
  NOT_SUPPORTED: -2,
  NO_RESOURCES: -3,
  NO_MEMORY: -4,
  INVALID_ARGS: -10,
  BAD_HANDLE: -11,
  WRONG_TYPE: -12,
  OUT_OF_RANGE: -14,
  BAD_STATE: -20,
  PEER_CLOSED: -24,
  NOT_FOUND: -25,
  ALREADY_EXISTS: -26,
  ACCESS_DENIED: -30,
  IO: -40,
  IO_DATA_INTEGRITY: -42,
  FILE_BIG: -53,
} as const;

const NAMES = new Map<number, string>(Object.entries(ZX).map(([k, v]) => [v, `ZX_ERR_${k}`]));
NAMES.set(0, 'ZX_OK');

/** "ZX_ERR_INVALID_ARGS (-10)" for logs and error messages. */
export function statusName(status: number): string {
  return `${NAMES.get(status) ?? 'status'} (${status})`;
}
