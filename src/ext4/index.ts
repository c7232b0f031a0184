// Public surface of the ext4 reader.
export { Ext4Image, ROOT_INO, MAX_SYMLINK_FOLLOWS } from './image';
export type { Ext4Stat, DirEntry, WalkEntry, LookupOptions } from './image';
export { Ext4Error } from './errors';
export type { Ext4ErrorCode } from './errors';
export type { FileExtent } from './extents';
export { mergeExtents } from './extents';
export type { FileType } from './inode';
export type { Superblock } from './superblock';
export { featureNames, INCOMPAT, COMPAT, RO_COMPAT } from './superblock';
export type { GroupDescriptor } from './groups';
export type { Inode } from './inode';
