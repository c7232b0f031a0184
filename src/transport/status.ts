// The zx status values the transport reports (numbers from spec/protocol.md), and their names
// for error messages and log lines.
export const ZX_OK = 0;
export const ZX_ERR_INTERNAL = -1;
export const ZX_ERR_NO_RESOURCES = -3;
export const ZX_ERR_NO_MEMORY = -4;
export const ZX_ERR_INVALID_ARGS = -10;
export const ZX_ERR_BAD_HANDLE = -11;
export const ZX_ERR_WRONG_TYPE = -12;
export const ZX_ERR_OUT_OF_RANGE = -14;
export const ZX_ERR_BAD_STATE = -20;
export const ZX_ERR_PEER_CLOSED = -24;
export const ZX_ERR_ACCESS_DENIED = -30;
export const ZX_ERR_IO = -40;

const NAMES: Record<number, string> = {
  [ZX_OK]: 'OK',
  [ZX_ERR_INTERNAL]: 'INTERNAL',
  [ZX_ERR_NO_RESOURCES]: 'NO_RESOURCES',
  [ZX_ERR_NO_MEMORY]: 'NO_MEMORY',
  [ZX_ERR_INVALID_ARGS]: 'INVALID_ARGS',
  [ZX_ERR_BAD_HANDLE]: 'BAD_HANDLE',
  [ZX_ERR_WRONG_TYPE]: 'WRONG_TYPE',
  [ZX_ERR_OUT_OF_RANGE]: 'OUT_OF_RANGE',
  [ZX_ERR_BAD_STATE]: 'BAD_STATE',
  [ZX_ERR_PEER_CLOSED]: 'PEER_CLOSED',
  [ZX_ERR_ACCESS_DENIED]: 'ACCESS_DENIED',
  [ZX_ERR_IO]: 'IO',
};

export function statusName(status: number): string {
  return NAMES[status] ?? `status ${status}`;
}

/** Channel limits, the same as Zircon's. */
export const MAX_MESSAGE_BYTES = 65536;
export const MAX_MESSAGE_HANDLES = 64;
