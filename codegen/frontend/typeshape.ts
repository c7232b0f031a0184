// Wire-format v2 type shapes and struct field shapes, computed by the same rules as fidlc's
// type_shape.cc (including its quirks: unions always report has_padding, values of 4 bytes or
// less are inlined in envelopes, counts saturate at 2^32-1, recursive types get maximal
// depth/out-of-line).
import type { IrFieldShape, IrTypeShape } from '../ir';
import type { LayoutDecl, StructDecl, Type } from './model';

const MAX = 0xffffffff;

/** Saturating uint32 arithmetic, as fidlc's ClampedNumeric<uint32_t>. */
function sat(n: number): number {
  return n > MAX ? MAX : n;
}
function add(a: number, b: number): number {
  return sat(a + b);
}
function mul(a: number, b: number): number {
  return sat(a * b);
}
function alignTo(size: number, alignment: number): number {
  return sat(Math.ceil(size / alignment) * alignment);
}
function objectAlign(size: number): number {
  return alignTo(size, 8);
}
function padding(offset: number, alignment: number): number {
  return (alignment - (offset % alignment)) % alignment;
}

const PRIMITIVE_SIZES: Record<string, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4,
  int64: 8, uint64: 8, float64: 8,
};

export function primitiveSize(subtype: string): number {
  const size = PRIMITIVE_SIZES[subtype];
  if (size === undefined) throw new Error(`unknown primitive ${subtype}`);
  return size;
}

/**
 * Computes shapes with memoisation. `recursive` holds the layouts that take part in a cycle
 * (necessarily through an optional or out-of-line reference, or compilation would have failed).
 */
export class ShapeCalculator {
  private readonly declShapes = new Map<LayoutDecl, IrTypeShape>();
  private readonly inProgress = new Set<LayoutDecl>();

  constructor(private readonly recursive: Set<LayoutDecl>) {}

  // Unaligned size and alignment are independent of recursion (references have fixed sizes).
  private unalignedSize(t: Type): number {
    switch (t.kind) {
      case 'primitive':
        return primitiveSize(t.subtype);
      case 'string':
      case 'vector':
        return 16;
      case 'array':
        return mul(this.unalignedSize(t.element), t.count);
      case 'handle':
      case 'endpoint':
      case 'internal':
        return 4;
      case 'identifier':
        if (t.nullable) return t.decl.kind === 'struct' ? 8 : 16;
        return this.declUnalignedSize(t.decl);
    }
  }

  private alignment(t: Type): number {
    switch (t.kind) {
      case 'primitive':
        return primitiveSize(t.subtype);
      case 'string':
      case 'vector':
        return 8;
      case 'array':
        return this.alignment(t.element);
      case 'handle':
      case 'endpoint':
      case 'internal':
        return 4;
      case 'identifier':
        if (t.nullable) return 8;
        return this.declAlignment(t.decl);
    }
  }

  private declUnalignedSize(d: LayoutDecl): number {
    switch (d.kind) {
      case 'enum':
      case 'bits':
        return primitiveSize(d.subtype);
      case 'table':
      case 'union':
        return 16;
      case 'overlay':
        // An 8-byte ordinal, then the largest member inline.
        return add(8, Math.max(0, ...d.members.filter((m) => m.used).map((m) => this.unalignedSize(m.used!.type))));
      case 'struct': {
        if (d.members.length === 0) return 1;
        let size = 0;
        for (const f of this.fieldShapes(d)) size = add(size, f.size + f.shape.padding);
        return size;
      }
    }
  }

  private declAlignment(d: LayoutDecl): number {
    switch (d.kind) {
      case 'enum':
      case 'bits':
        return primitiveSize(d.subtype);
      case 'table':
      case 'union':
      case 'overlay':
        return 8;
      case 'struct':
        if (this.recursive.has(d)) return 8;
        if (d.members.length === 0) return 1;
        return Math.max(...d.members.map((m) => this.alignment(m.type)));
    }
  }

  /** Offsets and padding of each struct member (fidlc's FieldShape). */
  fieldShapes(d: StructDecl): Array<{ size: number; shape: IrFieldShape }> {
    const out: Array<{ size: number; shape: IrFieldShape }> = [];
    let offset = 0;
    d.members.forEach((m, i) => {
      const nextAlign = i + 1 < d.members.length ? this.alignment(d.members[i + 1].type) : this.declAlignment(d);
      const size = this.unalignedSize(m.type);
      const pad = padding(offset + size, nextAlign);
      out.push({ size, shape: { offset, padding: pad } });
      offset = add(offset, size + pad);
    });
    return out;
  }

  typeShape(t: Type): IrTypeShape {
    const inlineSize = alignTo(this.unalignedSize(t), this.alignment(t));
    const alignment = this.alignment(t);
    switch (t.kind) {
      case 'primitive':
      case 'handle':
      case 'endpoint':
      case 'internal':
        return shape(inlineSize, alignment, 0, t.kind === 'handle' || t.kind === 'endpoint' ? 1 : 0, 0, false, false);
      case 'string': {
        const max = t.maxSize ?? MAX;
        return shape(16, 8, 1, 0, t.maxSize === undefined ? MAX : objectAlign(max), true, false);
      }
      case 'vector': {
        const count = t.maxSize ?? MAX;
        const el = this.typeShape(t.element);
        const elSize = this.unalignedSize(t.element);
        return shape(
          16, 8,
          add(1, el.depth),
          mul(el.max_handles, count),
          add(objectAlign(mul(elSize, count)), mul(objectAlign(el.max_out_of_line), count)),
          padding(elSize, 8) !== 0 || el.has_padding,
          el.has_flexible_envelope,
        );
      }
      case 'array': {
        const el = this.typeShape(t.element);
        return shape(inlineSize, alignment, el.depth, mul(el.max_handles, t.count), mul(el.max_out_of_line, t.count),
          el.has_padding, el.has_flexible_envelope);
      }
      case 'identifier': {
        const d = t.decl;
        const ds = this.declShape(d);
        // fidlc: any reference to a recursive layout has unbounded out-of-line size.
        if (!t.nullable) return this.recursive.has(d) ? { ...ds, max_out_of_line: MAX } : ds;
        if (d.kind === 'struct') {
          // box<S>: an 8-byte presence marker, the struct out of line.
          const ool = this.recursive.has(d) ? MAX : add(objectAlign(this.declUnalignedSize(d)), ds.max_out_of_line);
          return shape(8, 8, add(1, ds.depth), ds.max_handles, ool,
            padding(this.declUnalignedSize(d), 8) > 0 || ds.has_padding, ds.has_flexible_envelope);
        }
        // Optional union: same layout as the union.
        return { ...ds, max_out_of_line: this.recursive.has(d) ? MAX : ds.max_out_of_line };
      }
    }
  }

  declShape(d: LayoutDecl): IrTypeShape {
    const memo = this.declShapes.get(d);
    if (memo) return memo;
    if (this.inProgress.has(d)) {
      // Re-entered through a recursive reference: fidlc's recursion guard contributes nothing here;
      // the recursive flag makes depth and out-of-line maximal where it matters.
      return shape(this.declSizeForGuard(d), this.declAlignment(d), 0, 0, 0, false, false);
    }
    this.inProgress.add(d);
    const s = this.computeDeclShape(d);
    this.inProgress.delete(d);
    this.declShapes.set(d, s);
    return s;
  }

  private declSizeForGuard(d: LayoutDecl): number {
    return alignTo(this.declUnalignedSize(d), this.declAlignment(d));
  }

  private computeDeclShape(d: LayoutDecl): IrTypeShape {
    const inline = alignTo(this.declUnalignedSize(d), this.declAlignment(d));
    const alignment = this.declAlignment(d);
    switch (d.kind) {
      case 'enum':
      case 'bits':
        return shape(inline, alignment, 0, 0, 0, false, false);
      case 'struct': {
        let depth = 0, handles = 0, ool = 0, pad = false, flex = false;
        const fields = this.fieldShapes(d);
        d.members.forEach((m, i) => {
          const s = this.typeShape(m.type);
          depth = Math.max(depth, s.depth);
          handles = add(handles, s.max_handles);
          ool = add(ool, s.max_out_of_line);
          pad = pad || fields[i].shape.padding > 0 || s.has_padding;
          flex = flex || s.has_flexible_envelope;
        });
        if (this.recursive.has(d)) {
          depth = MAX;
          // fidlc's (admittedly approximate) rule: only direct handle members count, as "unbounded".
          handles = d.members.some((m) => m.type.kind === 'handle' || m.type.kind === 'endpoint') ? MAX : 0;
        }
        return shape(inline, alignment, depth, handles, ool, pad, flex);
      }
      case 'table': {
        let depth = 0, handles = 0, ool = 0, pad = false, flex = true; // tables are always flexible
        let maxOrdinal = 0;
        for (const m of d.members) {
          if (!m.used) continue;
          maxOrdinal = Math.max(maxOrdinal, m.ordinal);
          const s = this.typeShape(m.used.type);
          const size = this.unalignedSize(m.used.type);
          depth = Math.max(depth, add(1, s.depth));
          handles = add(handles, s.max_handles);
          // Values of 4 bytes or less live inside the envelope itself.
          if (size > 4) ool = add(ool, add(objectAlign(size), objectAlign(s.max_out_of_line)));
          pad = pad || padding(size, 8) > 0 || s.has_padding;
          flex = flex || s.has_flexible_envelope;
        }
        return shape(16, 8, add(1, depth), handles, add(mul(maxOrdinal, 8), ool), pad, flex);
      }
      case 'union': {
        let depth = 0, handles = 0, ool = 0, flex = !d.strict;
        for (const m of d.members) {
          if (!m.used) continue;
          const s = this.typeShape(m.used.type);
          const size = this.unalignedSize(m.used.type);
          depth = Math.max(depth, s.depth);
          handles = Math.max(handles, s.max_handles);
          if (size > 4) ool = Math.max(ool, add(objectAlign(size), s.max_out_of_line));
          flex = flex || s.has_flexible_envelope;
        }
        // fidlc reports has_padding = true for every union.
        return shape(16, 8, add(1, depth), handles, ool, true, flex);
      }
      case 'overlay': {
        // Members sit inline after the ordinal: depth, handles and out-of-line are the largest member's.
        let depth = 0, handles = 0, ool = 0, pad = false, flex = false;
        const body = inline - 8;
        for (const m of d.members) {
          if (!m.used) continue;
          const s = this.typeShape(m.used.type);
          depth = Math.max(depth, s.depth);
          handles = Math.max(handles, s.max_handles);
          ool = Math.max(ool, s.max_out_of_line);
          pad = pad || s.has_padding || this.unalignedSize(m.used.type) < body;
          flex = flex || s.has_flexible_envelope;
        }
        return shape(inline, alignment, depth, handles, ool, pad, flex);
      }
    }
  }
}

function shape(
  inline_size: number, alignment: number, depth: number, max_handles: number,
  max_out_of_line: number, has_padding: boolean, has_flexible_envelope: boolean,
): IrTypeShape {
  return { inline_size, alignment, depth, max_handles, max_out_of_line, has_padding, has_flexible_envelope };
}
