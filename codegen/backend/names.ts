// Naming rules of the TypeScript back end: FIDL names in, TypeScript identifiers out.

/** "fuchsia.starnix.runner" -> "fuchsia_starnix_runner" (module file name and import alias). */
export function libraryModuleName(library: string): string {
  return library.replace(/\./g, '_');
}

/** "lib/Name" -> ["lib", "Name"]. */
export function splitQualified(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash < 0) throw new Error(`not a fully qualified FIDL name: ${name}`);
  return [name.slice(0, slash), name.slice(slash + 1)];
}

/**
 * Declaration name in TypeScript: fidlc's compiler-made names such as "Pager_RegisterFile_Result"
 * lose their underscores ("PagerRegisterFileResult"), as in the Rust bindings.
 */
export function typeName(qualified: string): string {
  return splitQualified(qualified)[1].replace(/_/g, '');
}

/** "logical_start" -> "logicalStart"; "RegisterFile" -> "registerFile". */
export function camelCase(name: string): string {
  const parts = name.split('_').filter((p) => p.length > 0);
  return parts
    .map((p, i) => (i === 0 ? p.charAt(0).toLowerCase() + p.slice(1) : p.charAt(0).toUpperCase() + p.slice(1)))
    .join('');
}

/** Name of the coding-table constant of a declaration: "PagerExtent" -> "PagerExtentCoding". */
export function codingName(qualified: string): string {
  return `${typeName(qualified)}Coding`;
}

const RESERVED = new Set([
  'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else',
  'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof',
  'new', 'null', 'return', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var', 'void',
  'while', 'with', 'let', 'static', 'yield', 'await', 'implements', 'interface', 'package', 'private',
  'protected', 'public',
]);

/** An identifier usable as a top-level TypeScript name (reserved words get a trailing underscore). */
export function safeIdentifier(name: string): string {
  return RESERVED.has(name) ? `${name}_` : name;
}

/**
 * Members of the runtime's ClientBase (src/fidl/client.ts) that a generated client method must
 * not shadow: a FIDL method `Close` becomes `close_()`, so that `close()` still closes the channel.
 */
const CLIENT_BASE_MEMBERS = new Set([
  'channel', 'protocol', 'options', 'pending', 'events', 'eventMethods', 'lastTxid', 'closedError', 'closedReason',
  'close', 'listen', 'allocateTxid', 'send', 'oneWay', 'call', 'onMessage', 'dispatch', 'dispatchEvent', 'tearDown',
  'constructor',
]);

/** Name of a generated client method for FIDL method `name`. */
export function clientMethodName(name: string): string {
  const m = safeIdentifier(camelCase(name));
  return CLIENT_BASE_MEMBERS.has(m) ? `${m}_` : m;
}
