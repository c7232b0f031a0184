// What kind of object a handle's fd is, and whether it can stand for a given Zircon object type
// with given rights: the check the FIDL codec runs on every handle it encodes or decodes
// (`zx.Handle:VMO`, `zx.Handle:CHANNEL`, ...). The stand-in table is the README's "Handles
// checked as declared"; native/handle_info.cc holds the check itself.
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
export const ZX_OBJ_TYPE_PROCESS = 1;
export const ZX_OBJ_TYPE_THREAD = 2;
export const ZX_OBJ_TYPE_VMO = 3;
export const ZX_OBJ_TYPE_CHANNEL = 4;
export const ZX_OBJ_TYPE_EVENT = 5;
export const ZX_OBJ_TYPE_SOCKET = 14;
export const ZX_OBJ_TYPE_EVENTPAIR = 16;
export const ZX_OBJ_TYPE_JOB = 17;
export const ZX_OBJ_TYPE_VMAR = 18;
export const ZX_OBJ_TYPE_PAGER = 28;
export const ZX_OBJ_TYPE_STREAM = 31;
export const ZX_OBJ_TYPE_COUNTER = 34;

/** zx_rights_t bits that the check can decide on an fd. */
export const ZX_RIGHT_DUPLICATE = 1 << 0;
export const ZX_RIGHT_TRANSFER = 1 << 1;
export const ZX_RIGHT_READ = 1 << 2;
export const ZX_RIGHT_WRITE = 1 << 3;
export const ZX_RIGHT_EXECUTE = 1 << 4;
export const ZX_RIGHT_MAP = 1 << 5;
export const ZX_RIGHT_SIGNAL = 1 << 12;
export const ZX_RIGHT_SIGNAL_PEER = 1 << 13;
export const ZX_RIGHT_WAIT = 1 << 14;
export const ZX_RIGHT_INSPECT = 1 << 15;
export const ZX_RIGHT_RESIZE = 1 << 22;
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

/**
 * The codec's handle check (README, "Handles checked as declared"). Returns a zx status:
 *   OK (0); BAD_HANDLE (-11) when h is closed or its fd is gone;
 *   WRONG_TYPE (-12) when the fd cannot stand for objType: VMO and STREAM = memfd | regular file |
 *   block device; CHANNEL = AF_UNIX SOCK_SEQPACKET; SOCKET = AF_UNIX SOCK_STREAM; EVENTPAIR =
 *   AF_UNIX SOCK_DGRAM; EVENT and COUNTER = eventfd; JOB = a directory on cgroup2; PROCESS and
 *   THREAD = pidfd; NONE = any fd; every other type has no stand-in and takes no fd;
 *   ACCESS_DENIED (-30) when rights ask for one that the fd lacks, among those an fd can answer
 *   for: READ, WRITE (not on a write-sealed memfd), MAP (a readable VMO), RESIZE (a writable,
 *   unsealed regular file), SIGNAL, SIGNAL_PEER (writable), WAIT (not O_PATH), DUPLICATE,
 *   TRANSFER, INSPECT (any fd). Other rights mean nothing for an fd and are taken as held.
 *   ZX_RIGHT_SAME_RIGHTS (1<<31) asks for nothing in particular.
 * It runs on every handle of every message, so it is one native call that asks the kernel only
 * what the answer needs (statx with AT_STATX_DONT_SYNC, SO_TYPE/SO_DOMAIN for sockets, F_GETFL
 * when rights are asked; no /proc lookup) and builds no object.
 */
export function handleObjectCheck(h: Handle, objType: number, rights: number): number {
  if (!h.valid) return ZX.BAD_HANDLE;
  return native.checkHandle(h.fd, objType >>> 0, rights >>> 0) as number;
}
