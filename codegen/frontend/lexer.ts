// Tokeniser for FIDL source. Keeps `///` doc comments as tokens (they become `doc`
// attributes), drops `//` comments and whitespace, and records one-based line/column
// (columns count bytes, as fidlc does; our sources are ASCII so bytes == chars there).
import { FidlSyntaxError, SourceLocation } from './errors';

export type TokenKind =
  | 'ident'
  | 'number'
  | 'string'
  | 'doc'
  | 'punct'
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** The token text; for `doc`, the comment text after `///`; for `string`, the source with quotes. */
  text: string;
  loc: SourceLocation;
}

// Longest first, so `->` wins over `-`.
const PUNCTUATION = ['->', '{', '}', '(', ')', '[', ']', '<', '>', ';', ':', ',', '.', '=', '|', '@', '-'];

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}
function isIdentPart(c: string): boolean {
  return isIdentStart(c) || (c >= '0' && c <= '9');
}
function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

export function tokenize(filename: string, source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const loc = (start: number, length: number): SourceLocation => ({
    filename,
    line,
    column: start - lineStart + 1,
    length,
  });
  const fail = (at: number, detail: string): never => {
    throw new FidlSyntaxError(loc(at, 1), detail);
  };

  while (i < source.length) {
    const c = source[i];
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '/' && source[i + 1] === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? source.length : end;
      // Exactly three slashes make a doc comment; `////` is an ordinary comment, as in fidlc.
      if (source[i + 2] === '/' && source[i + 3] !== '/') {
        tokens.push({ kind: 'doc', text: source.slice(i + 3, stop).replace(/\r$/, ''), loc: loc(i, stop - i) });
      }
      i = stop;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      fail(i, 'block comments (/* */) are not FIDL syntax');
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < source.length && isIdentPart(source[j])) j++;
      tokens.push({ kind: 'ident', text: source.slice(i, j), loc: loc(i, j - i) });
      i = j;
      continue;
    }
    if (isDigit(c)) {
      let j = i + 1;
      // Hex, binary, decimal and decimal float literals.
      while (j < source.length && (isIdentPart(source[j]) || (source[j] === '.' && isDigit(source[j + 1] ?? '')))) j++;
      const text = source.slice(i, j);
      if (!/^(0x[0-9a-fA-F]+|0b[01]+|[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$/.test(text)) {
        fail(i, `malformed number literal '${text}'`);
      }
      tokens.push({ kind: 'number', text, loc: loc(i, j - i) });
      i = j;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < source.length && source[j] !== '"') {
        if (source[j] === '\n') fail(i, 'unterminated string literal');
        if (source[j] === '\\') {
          const rest = source.slice(j + 1, j + 10);
          if (!/^(["\\nrt]|u\{[0-9a-fA-F]{1,6}\})/.test(rest)) fail(j, `invalid escape sequence '\\${rest[0] ?? ''}' in a string literal`);
          j++;
        }
        j++;
      }
      if (j >= source.length) fail(i, 'unterminated string literal');
      tokens.push({ kind: 'string', text: source.slice(i, j + 1), loc: loc(i, j + 1 - i) });
      i = j + 1;
      continue;
    }
    const punct = PUNCTUATION.find((p) => source.startsWith(p, i));
    if (punct === undefined) {
      fail(i, `unexpected character '${c}'`);
    } else {
      tokens.push({ kind: 'punct', text: punct, loc: loc(i, punct.length) });
      i += punct.length;
    }
  }
  tokens.push({ kind: 'eof', text: '', loc: loc(i, 0) });
  return tokens;
}

/**
 * The value of a string literal token (quotes included): escapes \\ \" \n \r \t and \u{HEX}
 * (1 to 6 hex digits), as FIDL's grammar defines them. Throws FidlSyntaxError-free plain Error
 * only for tokens the lexer would not have produced.
 */
export function stringLiteralValue(text: string): string {
  const body = text.slice(1, -1);
  return body.replace(/\\(u\{([0-9a-fA-F]{1,6})\}|.)/g, (_all, esc: string, hexDigits: string | undefined) => {
    if (hexDigits !== undefined) return String.fromCodePoint(parseInt(hexDigits, 16));
    switch (esc) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': return '\\';
      case '"': return '"';
      default: return esc;
    }
  });
}
