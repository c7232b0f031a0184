// What kind of object a handle's fd is, and whether it can stand for a given Zircon object type
// with given rights: the check the FIDL codec runs on every handle it encodes or decodes
// (`zx.Handle:VMO`, `zx.Handle:CHANNEL`, ...).
import { native } from '../native';
import { Handle } from './handle';
import { ZX } from '../zx_status';

export type HandleKind =
  | 'memfd'
  | 'file'
  | 'blockdev'
  | 'chardev'
  | 'dir'
  | 'pipe'
  | 'socket-seqpacket'
  | 'socket-stream'
  | 'socket-dgram'
  | 'userfaultfd'
  | 'eventfd'
  | 'other';

export interface HandleInfo {
  kind: HandleKind;
  readable: boolean;
  writable: boolean;
  /** Bytes, for what can back a VMO: memfd, regular file, block device. */
  size?: bigint;
}

/** zx_obj_type_t values (zircon/types.h) that the protocol uses. */
export const ZX_OBJ_TYPE_NONE = 0;
export const ZX_OBJ_TYPE_VMO = 3;
export const ZX_OBJ_TYPE_CHANNEL = 4;
export const ZX_OBJ_TYPE_EVENT = 5;
export const ZX_OBJ_TYPE_SOCKET = 14;
export const ZX_OBJ_TYPE_EVENTPAIR = 16;
export const ZX_OBJ_TYPE_JOB = 17;
export const ZX_OBJ_TYPE_PAGER = 28;

/** zx_rights_t bits that an fd's open mode can grant or deny. */
export const ZX_RIGHT_READ = 1 << 2;
export const ZX_RIGHT_WRITE = 1 << 3;
/** "Whatever rights the handle has": FIDL's default when a handle type names no rights. */
export const ZX_RIGHT_SAME_RIGHTS = 0x80000000;

// st_mode file types (<sys/stat.h>).
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
// Socket types (<sys/socket.h>).
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_SEQPACKET = 5;
// Access modes (<fcntl.h>).
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_PATH = 0o10000000; // an fd that names a file but cannot read or write it

interface NativeFdInfo {
  mode: number;
  size: bigint;
  link: string;
  accessMode: number;
  socketType: number;
}

/** What an fd's open mode (O_ACCMODE bits; an O_PATH fd can do neither) lets it do. */
function openRights(mode: number, pathOnly: boolean): { readable: boolean; writable: boolean } {
  return {
    readable: !pathOnly && (mode === O_RDONLY || mode === O_RDWR),
    writable: !pathOnly && (mode === O_WRONLY || mode === O_RDWR),
  };
}

function classify(fact: NativeFdInfo): HandleKind {
  switch (fact.mode & S_IFMT) {
    case S_IFREG:
      // A memfd is a regular file on an internal tmpfs; /proc names it "/memfd:NAME (deleted)".
      return fact.link.startsWith('/memfd:') ? 'memfd' : 'file';
    case S_IFBLK:
      return 'blockdev';
    case S_IFCHR:
      return 'chardev';
    case S_IFDIR:
      return 'dir';
    case S_IFIFO:
      return 'pipe';
    case S_IFSOCK:
      if (fact.socketType === SOCK_SEQPACKET) return 'socket-seqpacket';
      if (fact.socketType === SOCK_STREAM) return 'socket-stream';
      if (fact.socketType === SOCK_DGRAM) return 'socket-dgram';
      return 'other';
    default:
      // Anonymous inodes have no file type bits; /proc names them.
      if (fact.link === 'anon_inode:[userfaultfd]') return 'userfaultfd';
      if (fact.link === 'anon_inode:[eventfd]') return 'eventfd';
      return 'other';
  }
}

/** Inspects h's fd (fstat, /proc/self/fd, F_GETFL, SO_TYPE). Throws the errno error for a closed fd. */
export function handleInfo(h: Handle): HandleInfo {
  const fact = native.fdInfo(h.fd) as NativeFdInfo;
  const kind = classify(fact);
  const info: HandleInfo = { kind, ...openRights(fact.accessMode & O_ACCMODE, (fact.accessMode & O_PATH) !== 0) };
  if (kind === 'memfd' || kind === 'file' || kind === 'blockdev') info.size = fact.size;
  return info;
}

// native.fdClass's packed facts (native/handle_info.cc): file type, socket type, open mode.
const CLASS_REGULAR = 1;
const CLASS_BLOCK = 2;
const CLASS_SOCKET = 6;

/**
 * Whether an fd of file type `type` (and socket type `socketType`) can stand for a zx object of
 * type objType. No type needs HandleInfo's finer kinds (memfd or file, which anon inode).
 */
function classFits(type: number, socketType: number, objType: number): boolean {
  switch (objType) {
    case ZX_OBJ_TYPE_VMO:
      return type === CLASS_REGULAR || type === CLASS_BLOCK; // memfd, regular file, block device
    case ZX_OBJ_TYPE_CHANNEL:
      return type === CLASS_SOCKET && socketType === SOCK_SEQPACKET;
    default:
      // NONE means "any handle". The other types (JOB, EVENTPAIR, COUNTER, EVENT, SOCKET, PAGER...)
      // have no fixed Linux stand-in in this project: a peer may pass any fd for them (the
      // runner's job and wake handles are opaque tokens here), so any fd is accepted.
      return true;
  }
}

/**
 * The codec's handle check. Returns a zx status:
 *   OK (0); BAD_HANDLE (-11) when h is closed or its fd is gone;
 *   WRONG_TYPE (-12) when the fd cannot stand for objType: VMO (3) = memfd | regular file |
 *   block device, CHANNEL (4) = SEQPACKET socket, NONE (0) and every type without a Linux
 *   stand-in = any fd;
 *   ACCESS_DENIED (-30) when rights ask for READ (1<<2) or WRITE (1<<3) that the fd's open mode
 *   lacks. ZX_RIGHT_SAME_RIGHTS (1<<31) asks for nothing in particular.
 * It runs on every handle of every message, so it asks the kernel only what the answer needs
 * (native.fdClass: fstat, and F_GETFL when rights are asked; no /proc lookup) and builds no HandleInfo.
 */
export function handleObjectCheck(h: Handle, objType: number, rights: number): number {
  if (!h.valid) return ZX.BAD_HANDLE;
  const asked = rights >>> 0;
  const anyRights = (asked & ZX_RIGHT_SAME_RIGHTS) !== 0;
  const facts = native.fdClass(h.fd, !anyRights) as number; // the open mode only when rights are asked
  if (facts < 0) return ZX.BAD_HANDLE;
  if (!classFits(facts & 0xf, (facts >> 4) & 0xf, objType)) return ZX.WRONG_TYPE;
  if (anyRights) return ZX.OK;
  const { readable, writable } = openRights((facts >> 8) & O_ACCMODE, (facts & (1 << 10)) !== 0);
  if ((asked & ZX_RIGHT_READ) !== 0 && !readable) return ZX.ACCESS_DENIED;
  if ((asked & ZX_RIGHT_WRITE) !== 0 && !writable) return ZX.ACCESS_DENIED;
  return ZX.OK;
}
