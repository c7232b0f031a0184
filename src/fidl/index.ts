// The FIDL runtime: coding tables, wire format v2 codec, transactional messages, client and
// server bindings. Generated code (src/gen) imports everything from here as `fidl`.
export * from './types';
export * from './errors';
export { Encoder, encodeValue, MAX_DEPTH } from './encoder';
export type { EncodedMessage, EncodeOptions } from './encoder';
export { Decoder, closeAll, decodeValue } from './decoder';
export type { DecodeOptions } from './decoder';
export { setDefaultHandleCheck, getDefaultHandleCheck, describeHandleType } from './handle_check';
export type { HandleCheck } from './handle_check';
export * from './message';
export * from './protocol';
export { statusOf } from './channel_like';
export type { FidlChannel } from './channel_like';
export { ClientBase, unwrapReply } from './client';
export type { ClientOptions } from './client';
export { ServerBinding } from './server';
export type { MethodHandlers, ServeOptions } from './server';
export { Handle } from '../transport/handle';
