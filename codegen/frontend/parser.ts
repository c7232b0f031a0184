// Recursive-descent parser for the FIDL language (the syntax of current fidlc, RFC-0050 and
// later): library, using, const, alias, type, resource_definition, protocol. Keywords are
// contextual, as in fidlc: `struct`, `strict`, `resource`... are only keywords where the
// grammar expects them.
import * as ast from './ast';
import { FidlCompileError, FidlSyntaxError, SourceLocation } from './errors';
import { Token, tokenize } from './lexer';

const LAYOUT_KINDS = new Set(['struct', 'table', 'union', 'enum', 'bits', 'overlay']);
const LAYOUT_MODIFIERS = new Set(['strict', 'flexible', 'resource']);
const PROTOCOL_MODIFIERS = new Set(['open', 'ajar', 'closed']);
const METHOD_MODIFIERS = new Set(['strict', 'flexible']);

export function parseFile(filename: string, source: string): ast.FileAst {
  return new Parser(filename, tokenize(filename, source)).parseFile();
}

class Parser {
  private pos = 0;
  constructor(private readonly filename: string, private readonly tokens: Token[]) {}

  // ---- token helpers ----------------------------------------------------------------------

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)];
  }
  private next(): Token {
    const t = this.tokens[this.pos];
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }
  private describe(t: Token): string {
    return t.kind === 'eof' ? 'end of file' : `'${t.text}'`;
  }
  private fail(t: Token, detail: string): never {
    throw new FidlSyntaxError(t.loc, detail);
  }
  private isPunct(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'punct' && t.text === text;
  }
  private isWord(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'ident' && t.text === text;
  }
  private expectPunct(text: string): Token {
    const t = this.peek();
    if (t.kind !== 'punct' || t.text !== text) this.fail(t, `expected '${text}', found ${this.describe(t)}`);
    return this.next();
  }
  private expectWord(text: string): Token {
    const t = this.peek();
    if (t.kind !== 'ident' || t.text !== text) this.fail(t, `expected '${text}', found ${this.describe(t)}`);
    return this.next();
  }
  private expectIdent(what: string): Token {
    const t = this.peek();
    if (t.kind !== 'ident') this.fail(t, `expected ${what}, found ${this.describe(t)}`);
    return this.next();
  }
  private span(from: SourceLocation, to: Token): SourceLocation {
    // Length spans to the end of `to` when on the same line; else just the start token's length.
    const length = to.loc.line === from.line ? to.loc.column + to.loc.length - from.column : from.length;
    return { ...from, length };
  }

  // ---- file --------------------------------------------------------------------------------

  parseFile(): ast.FileAst {
    const libraryAttrs = this.parseAttributes();
    this.expectWord('library');
    const library = this.parseCompoundName();
    this.expectPunct(';');
    for (const part of library.parts) {
      if (!/^[a-z][a-z0-9]*$/.test(part)) {
        this.fail(this.tokens[this.pos - 2], `invalid library name component '${part}' (lowercase letters and digits only)`);
      }
    }
    const file: ast.FileAst = { filename: this.filename, libraryAttrs, library, usings: [], decls: [] };
    for (;;) {
      const attrs = this.parseAttributes();
      const t = this.peek();
      if (t.kind === 'eof') {
        if (attrs.length > 0) this.fail(t, 'attributes must be followed by a declaration');
        break;
      }
      if (t.kind !== 'ident') this.fail(t, `expected a declaration, found ${this.describe(t)}`);
      switch (t.text) {
        case 'using': {
          if (attrs.length > 0) this.fail(t, 'attributes are not allowed on using');
          this.next();
          const name = this.parseCompoundName();
          let alias: string | undefined;
          if (this.isWord('as')) {
            this.next();
            alias = this.expectIdent('an alias name').text;
          }
          this.expectPunct(';');
          file.usings.push({ name, alias, loc: name.loc });
          break;
        }
        case 'const':
          file.decls.push(this.parseConst(attrs));
          break;
        case 'alias':
          file.decls.push(this.parseAlias(attrs));
          break;
        case 'type':
          file.decls.push(this.parseTypeDecl(attrs));
          break;
        case 'resource_definition':
          file.decls.push(this.parseResource(attrs));
          break;
        case 'protocol':
        case 'open':
        case 'ajar':
        case 'closed':
          file.decls.push(this.parseProtocol(attrs));
          break;
        case 'service':
          file.decls.push(this.parseService(attrs));
          break;
        default:
          this.fail(t, `expected a declaration (const, alias, type, protocol, using...), found ${this.describe(t)}`);
      }
    }
    return file;
  }

  // ---- attributes and names -----------------------------------------------------------------

  private parseAttributes(): ast.Attribute[] {
    const attrs: ast.Attribute[] = [];
    const docLines: Token[] = [];
    while (this.peek().kind === 'doc') docLines.push(this.next());
    if (docLines.length > 0) {
      const text = docLines.map((d) => d.text + '\n').join('');
      const loc = docLines[0].loc;
      attrs.push({
        name: 'doc',
        fromDocComment: true,
        loc,
        args: [{ value: { kind: 'literal', literalKind: 'string', text: JSON.stringify(text), loc }, loc }],
      });
    }
    while (this.isPunct('@')) {
      const at = this.next();
      const nameTok = this.expectIdent('an attribute name');
      const args: ast.AttributeArg[] = [];
      let end = nameTok;
      if (this.isPunct('(')) {
        const parsed = this.parseAttributeArgs();
        args.push(...parsed.args);
        end = parsed.end;
        if (args.length > 1 && args.some((a) => a.name === undefined)) {
          this.fail(at, `attribute @${nameTok.text}: with several arguments, every argument needs a name`);
        }
      }
      attrs.push({ name: nameTok.text, args, loc: this.span(at.loc, end) });
    }
    // Doc comments after attributes are attached too (fidlc accepts either order).
    const all = this.peek().kind === 'doc' ? attrs.concat(this.parseAttributes()) : attrs;
    const seen = new Map<string, ast.Attribute>();
    for (const a of all) {
      // fidlc: one attribute of a name per element (`///` comments are @doc).
      const key = a.name.toLowerCase().replace(/_/g, '');
      if (seen.has(key)) throw new FidlCompileError('bad-attribute', a.loc, `duplicate attribute @${a.name} on one element`);
      seen.set(key, a);
    }
    return all;
  }

  /** `( value )` or `( name = value, ... )`; the current token is `(`. */
  private parseAttributeArgs(): { args: ast.AttributeArg[]; end: Token } {
    this.expectPunct('(');
    const args: ast.AttributeArg[] = [];
    if (!this.isPunct(')')) {
      for (;;) {
        const argStart = this.peek();
        let name: string | undefined;
        if (this.peek().kind === 'ident' && this.isPunct('=', 1)) {
          name = this.next().text;
          this.next();
        }
        const value = this.parseConstExpr();
        args.push({ name, value, loc: argStart.loc });
        if (this.isPunct(',')) {
          this.next();
          continue;
        }
        break;
      }
    }
    return { args, end: this.expectPunct(')') };
  }

  /**
   * Modifiers from `allowed`, each optionally versioned: `flexible(added=18)`. A word is a modifier
   * only where one can be: followed by another word, `->`, or `(name=` (availability arguments).
   */
  private parseModifiers(allowed: Set<string>): ast.Modifier[] {
    const out: ast.Modifier[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'ident' || !allowed.has(t.text)) break;
      const versioned = this.isPunct('(', 1) && this.peek(2).kind === 'ident' && this.isPunct('=', 3);
      if (!versioned && this.peek(1).kind !== 'ident' && !this.isPunct('->', 1)) break;
      this.next();
      const args = versioned ? this.parseAttributeArgs().args : null;
      out.push({ name: t.text, args, loc: t.loc });
    }
    return out;
  }

  private parseCompoundName(): ast.Name {
    const first = this.expectIdent('a name');
    const parts = [first.text];
    let last = first;
    while (this.isPunct('.') && this.peek(1).kind === 'ident') {
      this.next();
      last = this.next();
      parts.push(last.text);
    }
    return { parts, loc: this.span(first.loc, last) };
  }

  // ---- constants ----------------------------------------------------------------------------

  private parseConstExpr(): ast.ConstExpr {
    let left = this.parseConstPrimary();
    while (this.isPunct('|')) {
      this.next();
      const right = this.parseConstPrimary();
      left = { kind: 'binop', op: '|', left, right, loc: left.loc };
    }
    return left;
  }

  private parseConstPrimary(): ast.ConstExpr {
    const t = this.peek();
    if (t.kind === 'number') {
      this.next();
      return { kind: 'literal', literalKind: 'numeric', text: t.text, loc: t.loc };
    }
    if (t.kind === 'punct' && t.text === '-' && this.peek(1).kind === 'number') {
      this.next();
      const n = this.next();
      return { kind: 'literal', literalKind: 'numeric', text: '-' + n.text, loc: { ...t.loc, length: n.loc.length + 1 } };
    }
    if (t.kind === 'string') {
      this.next();
      return { kind: 'literal', literalKind: 'string', text: t.text, loc: t.loc };
    }
    if (t.kind === 'ident' && (t.text === 'true' || t.text === 'false')) {
      this.next();
      return { kind: 'literal', literalKind: 'bool', text: t.text, loc: t.loc };
    }
    if (t.kind === 'ident') {
      const name = this.parseCompoundName();
      return { kind: 'ident', name, loc: name.loc };
    }
    if (t.kind === 'punct' && t.text === '(') {
      this.next();
      const inner = this.parseConstExpr();
      this.expectPunct(')');
      return inner;
    }
    return this.fail(t, `expected a constant, found ${this.describe(t)}`);
  }

  // ---- declarations ---------------------------------------------------------------------------

  private parseConst(attrs: ast.Attribute[]): ast.ConstDecl {
    this.expectWord('const');
    const nameTok = this.expectIdent('a constant name');
    const type = this.parseTypeCtor();
    this.expectPunct('=');
    const value = this.parseConstExpr();
    this.expectPunct(';');
    return { kind: 'const', attrs, name: nameTok.text, type, value, loc: nameTok.loc };
  }

  private parseAlias(attrs: ast.Attribute[]): ast.AliasDecl {
    this.expectWord('alias');
    const nameTok = this.expectIdent('an alias name');
    this.expectPunct('=');
    const type = this.parseTypeCtor();
    this.expectPunct(';');
    return { kind: 'alias', attrs, name: nameTok.text, type, loc: nameTok.loc };
  }

  private parseTypeDecl(attrs: ast.Attribute[]): ast.TypeDecl | ast.NewTypeDecl {
    this.expectWord('type');
    const nameTok = this.expectIdent('a type name');
    this.expectPunct('=');
    const ctor = this.parseTypeCtor();
    this.expectPunct(';');
    if (ctor.target.kind !== 'layout') {
      // `type N = T;`: a new type (RFC-0052).
      return { kind: 'newtype', attrs, name: nameTok.text, type: ctor, loc: nameTok.loc };
    }
    const layout = ctor.target.layout;
    if (ctor.constraints.length > 0) this.fail(this.tokens[this.pos - 2], 'a type declaration cannot carry constraints');
    if (layout.attrs.length > 0 && attrs.length > 0) {
      this.fail(this.tokenAt(layout.attrs[0].loc), 'attributes go either before `type` or on the layout, not both');
    }
    return { kind: 'type', attrs: attrs.length > 0 ? attrs : layout.attrs, name: nameTok.text, layout, loc: nameTok.loc };
  }

  private tokenAt(loc: SourceLocation): Token {
    return { kind: 'punct', text: '', loc };
  }

  private parseService(attrs: ast.Attribute[]): ast.ServiceDecl {
    this.expectWord('service');
    const nameTok = this.expectIdent('a service name');
    this.expectPunct('{');
    const members: ast.ServiceDecl['members'] = [];
    while (!this.isPunct('}')) {
      const mattrs = this.parseAttributes();
      const mname = this.expectIdent('a service member name');
      const type = this.parseTypeCtor();
      this.expectPunct(';');
      members.push({ attrs: mattrs, name: mname.text, type, loc: mname.loc });
    }
    this.expectPunct('}');
    this.expectPunct(';');
    return { kind: 'service', attrs, name: nameTok.text, members, loc: nameTok.loc };
  }

  private parseResource(attrs: ast.Attribute[]): ast.ResourceDecl {
    this.expectWord('resource_definition');
    const nameTok = this.expectIdent('a resource name');
    this.expectPunct(':');
    const type = this.parseTypeCtor();
    this.expectPunct('{');
    this.expectWord('properties');
    this.expectPunct('{');
    const properties: ast.ResourceDecl['properties'] = [];
    while (!this.isPunct('}')) {
      const pattrs = this.parseAttributes();
      const pname = this.expectIdent('a property name');
      const ptype = this.parseTypeCtor();
      this.expectPunct(';');
      properties.push({ attrs: pattrs, name: pname.text, type: ptype, loc: pname.loc });
    }
    this.expectPunct('}');
    this.expectPunct(';');
    this.expectPunct('}');
    this.expectPunct(';');
    return { kind: 'resource', attrs, name: nameTok.text, type, properties, loc: nameTok.loc };
  }

  private parseProtocol(attrs: ast.Attribute[]): ast.ProtocolDecl {
    const modifiers = this.parseModifiers(PROTOCOL_MODIFIERS);
    this.expectWord('protocol');
    const nameTok = this.expectIdent('a protocol name');
    this.expectPunct('{');
    const members: ast.ProtocolDecl['members'] = [];
    while (!this.isPunct('}')) {
      const mattrs = this.parseAttributes();
      if (this.isWord('compose') && this.peek(1).kind === 'ident') {
        const kw = this.next();
        const name = this.parseCompoundName();
        this.expectPunct(';');
        members.push({ kind: 'compose', attrs: mattrs, name, loc: { ...kw.loc, length: name.loc.column + name.loc.length - kw.loc.column } });
        continue;
      }
      members.push(this.parseMethod(mattrs));
    }
    this.expectPunct('}');
    this.expectPunct(';');
    return { kind: 'protocol', attrs, modifiers, name: nameTok.text, members, loc: nameTok.loc };
  }

  private parseMethod(attrs: ast.Attribute[]): ast.MethodAst {
    const modifiers = this.parseModifiers(METHOD_MODIFIERS);
    if (this.isPunct('->')) {
      // Event: -> Name(payload);
      this.next();
      const nameTok = this.expectIdent('an event name');
      const payload = this.parseParameterList();
      if (this.isWord('error')) this.fail(this.peek(), 'events cannot use error syntax');
      this.expectPunct(';');
      return { kind: 'method', attrs, modifiers, name: nameTok.text, response: { payload }, loc: nameTok.loc };
    }
    const nameTok = this.expectIdent('a method name');
    const request = { payload: this.parseParameterList() };
    let response: ast.MethodAst['response'];
    let error: TypeCtorOrUndefined;
    if (this.isPunct('->')) {
      this.next();
      response = { payload: this.parseParameterList() };
      if (this.isWord('error')) {
        this.next();
        error = this.parseTypeCtor();
      }
    }
    this.expectPunct(';');
    return { kind: 'method', attrs, modifiers, name: nameTok.text, request, response, error, loc: nameTok.loc };
  }

  /** `()` or `(TypeCtor)`; returns the payload type, undefined when empty. */
  private parseParameterList(): ast.TypeCtor | undefined {
    this.expectPunct('(');
    if (this.isPunct(')')) {
      this.next();
      return undefined;
    }
    const payload = this.parseTypeCtor();
    this.expectPunct(')');
    return payload;
  }

  // ---- types -------------------------------------------------------------------------------

  private parseTypeCtor(): ast.TypeCtor {
    const start = this.peek();
    let target: ast.TypeCtor['target'];
    if (this.isPunct('@')) {
      // Attributes of an inline layout: `@generated_name("Name") struct { ... }`.
      const attrs = this.parseAttributes();
      if (!this.atLayout()) this.fail(this.peek(), 'attributes inside a type must be followed by an inline layout');
      const layout = this.parseLayout();
      layout.attrs = attrs;
      target = { kind: 'layout', layout };
    } else if (this.atLayout()) {
      target = { kind: 'layout', layout: this.parseLayout() };
    } else {
      target = { kind: 'named', name: this.parseCompoundName() };
    }
    const params: ast.TypeCtor['params'] = [];
    if (target.kind === 'named' && this.isPunct('<')) {
      this.next();
      for (;;) {
        // A parameter is a type, unless it is a plain number or a constant (array sizes).
        const t = this.peek();
        if (t.kind === 'number' || t.kind === 'string') {
          params.push({ kind: 'const', value: this.parseConstExpr() });
        } else {
          params.push({ kind: 'type', type: this.parseTypeCtor() });
        }
        if (this.isPunct(',')) {
          this.next();
          continue;
        }
        break;
      }
      this.expectPunct('>');
    }
    const constraints: ast.ConstExpr[] = [];
    if (this.isPunct(':')) {
      this.next();
      if (this.isPunct('<')) {
        this.next();
        for (;;) {
          constraints.push(this.parseConstExpr());
          if (this.isPunct(',')) {
            this.next();
            continue;
          }
          break;
        }
        this.expectPunct('>');
      } else {
        constraints.push(this.parseConstPrimary());
      }
    }
    return { target, params, constraints, loc: start.loc };
  }

  /** Whether the next tokens start an inline layout: modifiers then a layout kind then `{` or `:`. */
  private atLayout(): boolean {
    let k = 0;
    for (;;) {
      const t = this.peek(k);
      if (t.kind !== 'ident' || !LAYOUT_MODIFIERS.has(t.text)) break;
      if (this.isPunct('(', k + 1)) {
        // A versioned modifier: skip its parenthesised arguments.
        let depth = 0;
        let j = k + 1;
        do {
          if (this.isPunct('(', j)) depth++;
          else if (this.isPunct(')', j)) depth--;
          else if (this.peek(j).kind === 'eof') return false;
          j++;
        } while (depth > 0);
        k = j;
      } else if (this.peek(k + 1).kind === 'ident') {
        k++;
      } else {
        break;
      }
    }
    const t = this.peek(k);
    return t.kind === 'ident' && LAYOUT_KINDS.has(t.text) && (this.isPunct('{', k + 1) || this.isPunct(':', k + 1));
  }

  private parseLayout(): ast.Layout {
    const modifiers = this.parseModifiers(LAYOUT_MODIFIERS);
    const kindTok = this.next();
    const kind = kindTok.text as ast.LayoutKind;
    let subtype: ast.TypeCtor | undefined;
    if (this.isPunct(':')) {
      if (kind !== 'enum' && kind !== 'bits') this.fail(this.peek(), `only enums and bits take an underlying type`);
      this.next();
      subtype = this.parseTypeCtor();
    }
    this.expectPunct('{');
    const members: ast.LayoutMember[] = [];
    while (!this.isPunct('}')) {
      members.push(this.parseLayoutMember(kind));
    }
    this.expectPunct('}');
    return { kind, attrs: [], modifiers, resource: false, subtype, members, loc: kindTok.loc };
  }

  private parseLayoutMember(kind: ast.LayoutKind): ast.LayoutMember {
    const attrs = this.parseAttributes();
    const start = this.peek();
    if (kind === 'table' || kind === 'union' || kind === 'overlay') {
      const ordTok = this.peek();
      if (ordTok.kind !== 'number' || !/^[0-9]+$/.test(ordTok.text)) {
        this.fail(ordTok, `expected an ordinal ('1:') for a ${kind} member, found ${this.describe(ordTok)}`);
      }
      this.next();
      const ordinal = { value: Number(ordTok.text), loc: ordTok.loc };
      if (ordinal.value < 1 || ordinal.value > 0xffffffff) this.fail(ordTok, `ordinal ${ordTok.text} out of range (1 to 2^32-1)`);
      this.expectPunct(':');
      if (this.isWord('reserved') && this.isPunct(';', 1)) {
        this.next();
        this.next();
        return { attrs, ordinal, reserved: true, loc: ordTok.loc };
      }
      const nameTok = this.expectIdent('a member name');
      const type = this.parseTypeCtor();
      this.expectPunct(';');
      return { attrs, ordinal, reserved: false, name: nameTok.text, type, loc: nameTok.loc };
    }
    const nameTok = this.expectIdent('a member name');
    if (kind === 'enum' || kind === 'bits') {
      this.expectPunct('=');
      const value = this.parseConstExpr();
      this.expectPunct(';');
      return { attrs, reserved: false, name: nameTok.text, value, loc: nameTok.loc };
    }
    const type = this.parseTypeCtor();
    let value: ast.ConstExpr | undefined;
    if (this.isPunct('=')) {
      this.next();
      value = this.parseConstExpr();
    }
    this.expectPunct(';');
    void start;
    return { attrs, reserved: false, name: nameTok.text, type, value, loc: nameTok.loc };
  }
}

type TypeCtorOrUndefined = ast.TypeCtor | undefined;
