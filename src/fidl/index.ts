// The FIDL runtime: coding tables, wire format v2 codec, transactional messages, client and
// server bindings. Generated code (src/gen) imports everything from here as `fidl`.
export * from './types';
export * from './errors';
export { Encoder, EncodedMessage, encodeValue, MAX_DEPTH } from './encoder';
export { Decoder, DecodeOptions, HandleCheck, closeAll, decodeValue, setDefaultHandleCheck } from './decoder';
export * from './message';
export * from './protocol';
export { FidlChannel, statusOf } from './channel_like';
export { ClientBase, ClientOptions, unwrapReply } from './client';
export { MethodHandlers, ServeOptions, ServerBinding } from './server';
export { Handle } from '../transport/handle';
