// `starnix-pager fidl encode|decode`: JSON <-> wire bytes of a type's body.
import { runCodecCommand } from '../../src/fidl/codec_cli';

function run(argv: string[], stdin: Buffer | string) {
  const chunks: Buffer[] = [];
  let stderr = '';
  const code = runCodecCommand(argv, Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin), {
    stdout: { write: (d: string | Uint8Array) => chunks.push(Buffer.from(d)) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout: Buffer.concat(chunks), stderr };
}

const TYPE = ['--type', 'fuchsia.starnix.runner/PagerRegisterFileRequest'];
// The FIDL names are canonical (what decode prints); the generated camelCase ones are accepted.
const request = { name: 'hello', inode_num: 12, size: '8192', extents: [{ logical_start: 0, logical_end: 1, physical_block: '18446744073709551615' }] };
const camelRequest = { name: 'hello', inodeNum: 12, size: '8192', extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: '18446744073709551615' }] };

describe('fidl encode / decode command', () => {
  test('encode then decode gives the JSON back, 64-bit values as strings', () => {
    const enc = run(['encode', ...TYPE], JSON.stringify(request));
    expect(enc.code).toBe(0);
    expect(enc.stderr).toBe('');
    // table header + 4 envelopes + string + size + vector header + 1 extent
    expect(enc.stdout.length).toBe(16 + 32 + 24 + 8 + 16 + 16);
    const dec = run(['fidl', 'decode', ...TYPE], enc.stdout);
    expect(dec.code).toBe(0);
    expect(JSON.parse(dec.stdout.toString())).toEqual(request);
  });

  test('camelCase field names encode to the same bytes; so do 64-bit values given as safe JSON numbers', () => {
    const canonical = run(['encode', ...TYPE], JSON.stringify(request)).stdout;
    expect(run(['encode', ...TYPE], JSON.stringify(camelRequest)).stdout.equals(canonical)).toBe(true);
    const mixed = { ...request, size: 8192 };
    expect(run(['encode', ...TYPE], JSON.stringify(mixed)).stdout.equals(canonical)).toBe(true);
  });

  test('a field given in both spellings is refused', () => {
    const r = run(['encode', ...TYPE], '{"inode_num": 1, "inodeNum": 2}');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/field "inode_num" is given twice/);
  });

  test('an unknown field: the error names the valid ones', () => {
    const r = run(['encode', ...TYPE], '{"inode": 1}');
    expect(r.stderr).toBe('starnix-pager: fidl: FIDL encode error (wrong_type): fuchsia.starnix.runner/PagerRegisterFileRequest has no field "inode" (its fields: name, inode_num, size, extents; camelCase spellings are accepted too)\n');
  });

  test('handles are {"handle": N} stand-ins, numbered in order on decode', () => {
    const t = ['--type', 'fuchsia.starnix.runner/ManagerCreatePagerRequest'];
    const enc = run(['encode', ...t], JSON.stringify({ backing_vmo: { handle: 7 }, block_size: '4096', pager: { handle: 9 } }));
    expect(enc.code).toBe(0);
    const dec = run(['decode', ...t], enc.stdout);
    expect(JSON.parse(dec.stdout.toString())).toEqual({ backing_vmo: { handle: 0 }, block_size: '4096', pager: { handle: 1 } });
  });

  test('result unions by their fidlc name', () => {
    const t = ['--type', 'fuchsia.starnix.runner/Pager_RegisterFile_Result'];
    const enc = run(['encode', ...t], '{"tag":"err","value":-25}');
    expect(enc.stdout.toString('hex')).toBe('0200000000000000e7ffffff00000100');
    expect(JSON.parse(run(['decode', ...t], enc.stdout).stdout.toString())).toEqual({ tag: 'err', value: -25 });
  });

  test.each([
    ['usage: no verb', [], '', 2],
    ['usage: no type', ['encode'], '{}', 2],
    ['usage: unknown type', ['encode', '--type', 'fuchsia.starnix.runner/Nope'], '{}', 2],
    ['bad JSON', ['encode', ...TYPE], '{', 1],
    ['unknown field', ['encode', ...TYPE], '{"nmae":"x"}', 1],
    ['64-bit value as a JSON number past 2^53', ['encode', ...TYPE], '{"size": 18446744073709551615}', 1],
    ['value out of range', ['encode', ...TYPE], '{"inode_num": -1}', 1],
    ['too many extents', ['encode', ...TYPE], JSON.stringify({ extents: Array(1025).fill({ logical_start: 0, logical_end: 0, physical_block: '0' }) }), 1],
    ['truncated bytes', ['decode', ...TYPE], Buffer.alloc(8), 1],
    ['bad padding', ['decode', ...TYPE], Buffer.from('0100000000000000ffffffffffffffff0100000001000100', 'hex'), 1],
  ])('%s: exit status and one line on stderr', (_n, argv, stdin, code) => {
    const r = run(argv as string[], stdin as string | Buffer);
    expect(r.code).toBe(code);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/^starnix-pager: fidl: /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
