// FIDL versioning (@available and versioned modifiers), resolved for one target version per
// platform as fidlc's `--available PLATFORM:VERSION` does (docs/reference/fidl/language/
// versioning.md): every element whose availability does not include the target is removed from
// the syntax tree before anything else looks at it, and every element's modifiers are reduced
// to those present at the target. What fidlc checks about the arguments is checked here, with
// the element's file, line and column: placement (`platform` only on the library, `renamed`
// only on members), order (added <= deprecated < removed), `removed`/`replaced` exclusive,
// inheritance (a member lives within its parent), and replacements (`replaced=N` needs an
// element of the same identity added at N; `removed=N` must have none).
import * as ast from './ast';
import { FidlCompileError, SourceLocation } from './errors';
import { methodSelector } from './ordinal';
import { stringLiteralValue } from './lexer';

/** Versions are 1..2^31-1, then NEXT, then HEAD. */
export type Version = number;
export const NEXT: Version = 2 ** 31;
export const HEAD: Version = 2 ** 31 + 1;
const MAX_NUMBERED = 2 ** 31 - 1;

export function versionText(v: Version): string {
  return v === HEAD ? 'HEAD' : v === NEXT ? 'NEXT' : String(v);
}

/** Parses `HEAD`, `NEXT` or a number 1..2^31-1; null if it is none of them. */
export function parseVersion(text: string): Version | null {
  if (text === 'HEAD') return HEAD;
  if (text === 'NEXT') return NEXT;
  if (!/^[0-9]+$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= MAX_NUMBERED ? n : null;
}

/** Target version per platform; platforms not named are compiled at HEAD, as fidlc does. */
export type Targets = Map<string, Version>;

/** `fuchsia:HEAD` / `fuchsia:27` -> [platform, version]; throws a plain Error on a bad spec. */
export function parseTarget(spec: string): [string, Version] {
  const m = /^([a-z][a-z0-9]*):([A-Z0-9]+)$/.exec(spec);
  const v = m ? parseVersion(m[2]) : null;
  if (!m || v === null) throw new Error(`--available wants PLATFORM:VERSION (a number, NEXT or HEAD), not '${spec}'`);
  return [m[1], v];
}

interface Range {
  added: Version;
  deprecated?: Version;
  /** removed or replaced: the first version without the element. */
  end?: Version;
}

interface Availability {
  added?: Version;
  deprecated?: Version;
  removed?: Version;
  replaced?: Version;
  renamed?: string;
  platform?: string;
  attr: ast.Attribute;
}

function fail(loc: SourceLocation, detail: string): never {
  throw new FidlCompileError('availability', loc, detail);
}

function argValueText(arg: ast.AttributeArg): string {
  const v = arg.value;
  if (v.kind === 'literal') return v.literalKind === 'string' ? stringLiteralValue(v.text) : v.text;
  if (v.kind === 'ident' && v.name.parts.length === 1) return v.name.parts[0];
  return fail(arg.loc, 'arguments of @available must be literals (a number, NEXT, HEAD or a string)');
}

const VERSION_ARGS = ['added', 'deprecated', 'removed', 'replaced'] as const;

function readAvailable(attr: ast.Attribute, where: 'library' | 'declaration' | 'member' | 'modifier'): Availability {
  const out: Availability = { attr };
  if (attr.args.length === 0) fail(attr.loc, '@available needs at least one argument');
  const seen = new Set<string>();
  for (const arg of attr.args) {
    const name = arg.name;
    if (name === undefined) fail(arg.loc, '@available takes named arguments (added=, deprecated=, removed=, replaced=, ...)');
    if (seen.has(name)) fail(arg.loc, `@available argument '${name}' given twice`);
    seen.add(name);
    const text = argValueText(arg);
    if ((VERSION_ARGS as readonly string[]).includes(name)) {
      if (where === 'modifier' && name !== 'added' && name !== 'removed') {
        fail(arg.loc, `a modifier's availability takes only 'added' and 'removed', not '${name}'`);
      }
      const v = parseVersion(text);
      if (v === null) fail(arg.loc, `'${text}' is not a version (1 to 2^31-1, NEXT or HEAD)`);
      out[name as (typeof VERSION_ARGS)[number]] = v;
    } else if (name === 'platform') {
      if (where !== 'library') fail(arg.loc, "'platform' is only allowed on the library declaration");
      if (!/^[a-z][a-z0-9]*$/.test(text)) fail(arg.loc, `invalid platform name '${text}'`);
      out.platform = text;
    } else if (name === 'note') {
      if (where === 'modifier') fail(arg.loc, "a modifier's availability takes only 'added' and 'removed'");
    } else if (name === 'renamed') {
      if (where !== 'member') fail(arg.loc, "'renamed' is only allowed on members (declarations are renamed by removing the old one and adding a new one)");
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(text)) fail(arg.loc, `'${text}' is not a valid name`);
      out.renamed = text;
    } else {
      fail(arg.loc, `unknown @available argument '${name}'`);
    }
  }
  if (out.removed !== undefined && out.replaced !== undefined) fail(attr.loc, "'removed' and 'replaced' cannot both be given");
  if (out.renamed !== undefined && out.removed === undefined && out.replaced === undefined) {
    fail(attr.loc, "'renamed' needs 'removed' or 'replaced'");
  }
  if (seen.has('note') && out.deprecated === undefined) fail(attr.loc, "'note' goes with 'deprecated'");
  if (where === 'library' && out.added === undefined) fail(attr.loc, "@available on a library needs 'added'");
  const end = out.removed ?? out.replaced;
  if (out.added !== undefined && out.deprecated !== undefined && out.deprecated < out.added) {
    fail(attr.loc, `deprecated=${versionText(out.deprecated)} comes before added=${versionText(out.added)}`);
  }
  if (end !== undefined) {
    const last = out.deprecated ?? out.added;
    if (last !== undefined && end <= last) {
      fail(attr.loc, `${out.removed !== undefined ? 'removed' : 'replaced'}=${versionText(end)} must come after ${out.deprecated !== undefined ? 'deprecated' : 'added'}=${versionText(last)}`);
    }
  }
  return out;
}

/** The @available attribute of an element, if any (two is an error). */
function availableAttr(attrs: ast.Attribute[]): ast.Attribute | undefined {
  const found = attrs.filter((a) => a.name === 'available');
  if (found.length > 1) fail(found[1].loc, 'duplicate @available attribute');
  return found[0];
}

/** The element's range: its own arguments within its parent's, which it may not exceed. */
function inherit(parent: Range, own: Availability | undefined): Range {
  if (own === undefined) return parent;
  const loc = own.attr.loc;
  const added = own.added ?? parent.added;
  if (own.added !== undefined && own.added < parent.added) {
    fail(loc, `added=${versionText(own.added)} is before its parent was added (${versionText(parent.added)})`);
  }
  const ownEnd = own.removed ?? own.replaced;
  if (ownEnd !== undefined && parent.end !== undefined && ownEnd > parent.end) {
    fail(loc, `${own.removed !== undefined ? 'removed' : 'replaced'}=${versionText(ownEnd)} is after its parent is removed (${versionText(parent.end)})`);
  }
  if (parent.end !== undefined && added >= parent.end) {
    fail(loc, `added=${versionText(added)} is at or after its parent is removed (${versionText(parent.end)})`);
  }
  if (own.deprecated !== undefined && parent.deprecated !== undefined && own.deprecated > parent.deprecated) {
    fail(loc, `deprecated=${versionText(own.deprecated)} is after its parent is deprecated (${versionText(parent.deprecated)})`);
  }
  const end = ownEnd ?? parent.end;
  if (end !== undefined && end <= added) fail(loc, `the element is removed (${versionText(end)}) before it is added (${versionText(added)})`);
  return { added, deprecated: own.deprecated ?? parent.deprecated, end };
}

function present(r: Range, target: Version): boolean {
  return r.added <= target && (r.end === undefined || target < r.end);
}

/** One element of a group whose replacements are checked together (declarations, or a layout's members). */
interface Sibling {
  /** API identity: the name. */
  name: string;
  /** ABI identity for members (ordinal, value, selector); the name for declarations. */
  identity: string;
  own?: Availability;
  range: Range;
  loc: SourceLocation;
}

/**
 * replaced=N must be matched by a sibling of the same identity added at N (named `renamed` if
 * given, else the same name); removed=N must not be.
 */
function checkReplacements(siblings: Sibling[], members: boolean, composedAt: Set<Version> = new Set()): void {
  for (const s of siblings) {
    const own = s.own;
    if (own === undefined) continue;
    const end = own.replaced ?? own.removed;
    if (end === undefined) continue;
    const successors = siblings.filter((o) => o !== s && o.identity === s.identity && o.range.added === end);
    const what = members ? 'member' : 'declaration';
    if (own.replaced !== undefined) {
      // A method may be replaced by one that a protocol composed at the same version brings in.
      if (successors.length === 0 && composedAt.has(end)) continue;
      if (successors.length === 0) {
        fail(own.attr.loc, `'${s.name}' is replaced at ${versionText(end)}, but no ${what} with the same ${members ? 'ABI identity' : 'name'} is added at ${versionText(end)}`);
      }
      const wantName = own.renamed ?? s.name;
      if (!successors.some((o) => o.name === wantName)) {
        fail(own.attr.loc, `'${s.name}' is replaced at ${versionText(end)} by '${successors[0].name}'${own.renamed !== undefined ? `, not by '${own.renamed}' as renamed= says` : '; use renamed= to change its name'}`);
      }
    } else if (members && successors.length > 0) {
      // (Declarations may be removed and a new one of the same name added: fuchsia.data does.)
      fail(own.attr.loc, `'${s.name}' is removed at ${versionText(end)}, but '${successors[0].name}' (${successors[0].loc.filename}:${successors[0].loc.line}) is added there with the same ${members ? 'ABI identity' : 'name'}: use replaced=`);
    }
  }
}

/** Reduces versioned modifiers to the ones present at the target; checks them as fidlc does. */
const MODIFIER_GROUPS = [['strict', 'flexible'], ['open', 'ajar', 'closed'], ['resource']];

function overlaps(a: Range, b: Range): boolean {
  return a.added < (b.end ?? Infinity) && b.added < (a.end ?? Infinity);
}

function modifiersAt(mods: ast.Modifier[], range: Range, target: Version, versioned: boolean): ast.Modifier[] {
  const out: ast.Modifier[] = [];
  const seenWritten = new Set<string>();
  // Modifiers of one group (strict/flexible, open/ajar/closed) may follow one another across
  // versions, never apply at the same version.
  const ranges = mods.map((m) => (m.args === null ? range : inherit(range, readAvailable({ name: 'available', args: m.args, loc: m.loc }, 'modifier'))));
  for (let i = 0; i < mods.length; i++) {
    for (let j = 0; j < i; j++) {
      const group = MODIFIER_GROUPS.find((g) => g.includes(mods[i].name));
      if (!group?.includes(mods[j].name) || !overlaps(ranges[i], ranges[j])) continue;
      if (mods[i].name === mods[j].name) badModifier(mods[i].loc, `duplicate modifier '${mods[i].name}'`);
      badModifier(mods[i].loc, `'${mods[j].name}' and '${mods[i].name}' cannot both apply${versioned ? ' at the same version' : ''}`);
    }
  }
  for (const m of mods) {
    if (m.args !== null && !versioned) fail(m.loc, `modifier '${m.name}' has availability arguments, but the library has no @available`);
    if (m.args === null && seenWritten.has(m.name)) badModifier(m.loc, `duplicate modifier '${m.name}'`);
    seenWritten.add(m.name);
    if (m.args === null) {
      out.push(m);
      continue;
    }
    const av = readAvailable({ name: 'available', args: m.args, loc: m.loc }, 'modifier');
    const r = inherit(range, av);
    if (present(r, target)) out.push(m);
  }
  return out;
}

interface LibraryInfo {
  name: string;
  versioned: boolean;
  platform: string;
  range: Range;
}

class Pass {
  constructor(private readonly lib: LibraryInfo, private readonly target: Version) {}

  private own(attrs: ast.Attribute[], where: 'declaration' | 'member'): Availability | undefined {
    const attr = availableAttr(attrs);
    if (attr === undefined) return undefined;
    if (!this.lib.versioned) fail(attr.loc, `@available is used in library ${this.lib.name}, so its library declaration needs @available too`);
    return readAvailable(attr, where);
  }

  /** Filters the declarations of all files of the library (replacements span files). */
  declarations(files: ast.FileAst[]): void {
    const siblings: Sibling[] = [];
    const keep = new Map<ast.Decl, Range>();
    for (const f of files) {
      for (const d of f.decls) {
        const own = this.own(d.attrs, 'declaration');
        const range = inherit(this.lib.range, own);
        siblings.push({ name: d.name, identity: d.name, own, range, loc: d.loc });
        if (present(range, this.target)) keep.set(d, range);
      }
    }
    if (this.lib.versioned) checkReplacements(siblings, false);
    // Every element is checked, also those absent at the target; then only the present stay.
    let i = 0;
    for (const f of files) {
      for (const d of f.decls) this.declaration(d, siblings[i++].range);
      f.decls = f.decls.filter((d) => keep.has(d));
    }
  }

  private declaration(d: ast.Decl, range: Range): void {
    switch (d.kind) {
      case 'const':
        this.typeCtor(d.type, range);
        break;
      case 'alias':
      case 'newtype':
        this.typeCtor(d.type, range);
        break;
      case 'type':
        this.layout(d.layout, range, d.name);
        break;
      case 'resource': {
        d.properties = this.members(d.properties, range, (p) => p.name);
        for (const p of d.properties) this.typeCtor(p.type, range);
        break;
      }
      case 'service':
        d.members = this.members(d.members, range, (m) => m.name);
        for (const m of d.members) this.typeCtor(m.type, range);
        break;
      case 'protocol':
        this.protocol(d, range);
        break;
    }
  }

  /** Keeps the members present at the target, after checking replacements among them. */
  private members<T extends { attrs: ast.Attribute[]; name?: string; loc: SourceLocation }>(
    members: T[], parent: Range, identity: (m: T) => string, after?: (m: T, r: Range) => void,
  ): T[] {
    const siblings: Sibling[] = [];
    const keep: T[] = [];
    for (const m of members) {
      const own = this.own(m.attrs, 'member');
      const range = inherit(parent, own);
      siblings.push({ name: m.name ?? identity(m), identity: identity(m), own, range, loc: m.loc });
      after?.(m, range);
      if (present(range, this.target)) keep.push(m);
    }
    if (this.lib.versioned) checkReplacements(siblings, true);
    return keep;
  }

  private layout(layout: ast.Layout, range: Range, name: string): void {
    layout.modifiers = modifiersAt(layout.modifiers, range, this.target, this.lib.versioned);
    const identity = (m: ast.LayoutMember): string => {
      if (m.ordinal !== undefined) return `#${m.ordinal.value}`;
      if ((layout.kind === 'enum' || layout.kind === 'bits') && m.value !== undefined) return `=${constText(m.value)}`;
      return m.name ?? '';
    };
    layout.members = this.members(layout.members, range, identity, (m, r) => {
      if (m.type) this.typeCtor(m.type, r);
    });
    void name;
    if (layout.subtype) this.typeCtor(layout.subtype, range);
  }

  private protocol(p: ast.ProtocolDecl, range: Range): void {
    p.modifiers = modifiersAt(p.modifiers, range, this.target, this.lib.versioned);
    const identity = (m: ast.MethodAst | ast.ComposeAst): string => {
      if (m.kind === 'compose') return `compose ${m.name.parts.join('.')}`;
      const sel = m.attrs.find((a) => a.name === 'selector')?.args[0]?.value;
      const selText = sel && sel.kind === 'literal' && sel.literalKind === 'string' ? stringLiteralValue(sel.text) : undefined;
      return methodSelector(this.lib.name, p.name, m.name, selText);
    };
    const named = (m: ast.MethodAst | ast.ComposeAst): ast.MethodAst | (ast.ComposeAst & { name?: undefined }) =>
      m as ast.MethodAst;
    void named;
    const siblings: Sibling[] = [];
    const keep: Array<ast.MethodAst | ast.ComposeAst> = [];
    for (const m of p.members) {
      const own = this.own(m.attrs, 'member');
      const range2 = inherit(range, own);
      const name = m.kind === 'compose' ? m.name.parts.join('.') : m.name;
      siblings.push({ name, identity: identity(m), own, range: range2, loc: m.loc });
      if (present(range2, this.target)) keep.push(m);
      if (m.kind === 'method') {
        m.modifiers = modifiersAt(m.modifiers, range2, this.target, this.lib.versioned);
        if (m.request?.payload) this.typeCtor(m.request.payload, range2);
        if (m.response?.payload) this.typeCtor(m.response.payload, range2);
        if (m.error) this.typeCtor(m.error, range2);
      }
    }
    const composedAt = new Set(siblings.filter((x) => x.identity.startsWith('compose ')).map((x) => x.range.added));
    if (this.lib.versioned) checkReplacements(siblings, true, composedAt);
    p.members = keep;
  }

  /** Inline layouts inside a type constructor are elements too (their members can be versioned). */
  private typeCtor(ctor: ast.TypeCtor, range: Range): void {
    if (ctor.target.kind === 'layout') {
      const own = this.own(ctor.target.layout.attrs, 'declaration');
      this.layout(ctor.target.layout, inherit(range, own), '');
    }
    for (const p of ctor.params) if (p.kind === 'type') this.typeCtor(p.type, range);
  }
}

function constText(e: ast.ConstExpr): string {
  switch (e.kind) {
    case 'literal':
      return e.text;
    case 'ident':
      return e.name.parts.join('.');
    case 'binop':
      return `${constText(e.left)}|${constText(e.right)}`;
  }
}

/**
 * Resolves availability for the files of one library (all of them: a library's @available sits
 * on one file's library declaration) at the target of its platform. Mutates the syntax trees.
 * Returns the library's platform ('unversioned' when it has no @available).
 */
export function resolveAvailability(name: string, files: ast.FileAst[], targets: Targets): { platform: string; versioned: boolean } {
  const libAttrs = files.flatMap((f) => f.libraryAttrs.filter((a) => a.name === 'available'));
  if (libAttrs.length > 1) fail(libAttrs[1].loc, `@available is on the library declaration of more than one file of ${name}`);
  let info: LibraryInfo;
  if (libAttrs.length === 0) {
    info = { name, versioned: false, platform: 'unversioned', range: { added: 1 } };
  } else {
    const av = readAvailable(libAttrs[0], 'library');
    const platform = av.platform ?? name.split('.')[0];
    info = { name, versioned: true, platform, range: { added: av.added!, deprecated: av.deprecated, end: av.removed ?? av.replaced } };
    if (av.replaced !== undefined) fail(libAttrs[0].loc, "a library cannot be 'replaced'");
  }
  const target = targets.get(info.platform) ?? HEAD;
  new Pass(info, info.versioned ? target : HEAD).declarations(files);
  applyModifiers(files);
  return { platform: info.platform, versioned: info.versioned };
}

// ---- modifiers: from the list present at the target to the element's properties ----

function applyModifiers(files: ast.FileAst[]): void {
  const layout = (l: ast.Layout): void => {
    for (const m of l.modifiers) {
      if (m.name === 'resource') {
        if (l.resource) badModifier(m.loc, "duplicate modifier 'resource'");
        if (l.kind === 'enum' || l.kind === 'bits') badModifier(m.loc, `${l.kind} cannot be a resource type`);
        l.resource = true;
      } else {
        const s = m.name as 'strict' | 'flexible';
        if (l.strictness !== undefined) badModifier(m.loc, l.strictness === s ? `duplicate modifier '${s}'` : "'strict' and 'flexible' cannot both apply");
        if (l.kind === 'struct' || l.kind === 'table') badModifier(m.loc, `${l.kind}s cannot be ${s}`);
        if (l.kind === 'overlay' && s === 'flexible') badModifier(m.loc, 'overlays are always strict');
        l.strictness = s;
      }
    }
    for (const mem of l.members) if (mem.type) ctor(mem.type);
    if (l.subtype) ctor(l.subtype);
  };
  const ctor = (c: ast.TypeCtor): void => {
    if (c.target.kind === 'layout') layout(c.target.layout);
    for (const p of c.params) if (p.kind === 'type') ctor(p.type);
  };
  for (const f of files) {
    for (const d of f.decls) {
      switch (d.kind) {
        case 'type':
          layout(d.layout);
          break;
        case 'const':
        case 'alias':
        case 'newtype':
          ctor(d.type);
          break;
        case 'resource':
          for (const p of d.properties) ctor(p.type);
          break;
        case 'service':
          for (const m of d.members) ctor(m.type);
          break;
        case 'protocol': {
          d.openness = undefined;
          for (const m of d.modifiers) {
            if (d.openness !== undefined) badModifier(m.loc, d.openness === m.name ? `duplicate modifier '${m.name}'` : `'${d.openness}' and '${m.name}' cannot both apply`);
            d.openness = m.name as 'open' | 'ajar' | 'closed';
          }
          for (const m of d.members) {
            if (m.kind !== 'method') continue;
            m.strictness = undefined;
            for (const mod of m.modifiers) {
              if (m.strictness !== undefined) badModifier(mod.loc, m.strictness === mod.name ? `duplicate modifier '${mod.name}'` : "'strict' and 'flexible' cannot both apply");
              m.strictness = mod.name as 'strict' | 'flexible';
            }
            for (const p of [m.request?.payload, m.response?.payload, m.error]) if (p) ctor(p);
          }
          break;
        }
      }
    }
  }
}

function badModifier(loc: SourceLocation, detail: string): never {
  throw new FidlCompileError('bad-modifier', loc, detail);
}
