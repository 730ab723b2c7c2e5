// A strict JSON parser (RFC 8259) that reports errors at a line and column, and remembers where
// each object and array began, so that the page can point at the offending part of a document.

/** An error at a 1-based line and column of the input. */
export class SyntaxErrorAt extends Error {
  constructor(message, line, column) {
    super(message);
    this.name = 'SyntaxErrorAt';
    this.line = line;
    this.column = column;
  }
}

/** Line and column (1-based) of offset `pos` in `text`. */
export function lineColumn(text, pos) {
  let line = 1;
  let start = 0;
  const end = Math.min(pos, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return { line, column: end - start + 1 };
}

/**
 * Parses `text`. Returns `{value, positions}`: `positions` maps every object and array of the
 * value to `{line, column}` where it starts. Throws SyntaxErrorAt.
 */
export function parseJson(text) {
  const positions = new WeakMap();
  let pos = 0;

  const fail = (message, at = pos) => {
    const { line, column } = lineColumn(text, at);
    throw new SyntaxErrorAt(message, line, column);
  };
  const describe = (at) => {
    if (at >= text.length) return 'the end of the input';
    const c = text[at];
    return c === '\n' ? 'a line break' : `'${c}'`;
  };
  const ws = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 32 || c === 9 || c === 10 || c === 13) pos++;
      else break;
    }
  };
  const expect = (c, what) => {
    if (text[pos] !== c) fail(`expected ${what}, found ${describe(pos)}`);
    pos++;
  };

  const string = () => {
    const start = pos;
    pos++; // opening quote
    let out = '';
    for (;;) {
      if (pos >= text.length) fail('unterminated string', start);
      const c = text[pos];
      const code = text.charCodeAt(pos);
      if (c === '"') {
        pos++;
        return out;
      }
      if (code < 0x20) fail('control character in a string (escape it)');
      if (c === '\\') {
        const e = text[pos + 1];
        const map = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in map) {
          out += map[e];
          pos += 2;
        } else if (e === 'u') {
          const hex = text.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('\\u needs four hex digits');
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
        } else {
          fail(`invalid escape '\\${e === undefined ? '' : e}'`);
        }
      } else {
        out += c;
        pos++;
      }
    }
  };

  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(pos, pos + 400));
    if (!m || m[0] === '-' || m[0] === '') fail(`expected a value, found ${describe(pos)}`);
    pos += m[0].length;
    return Number(m[0]);
  };

  const value = (depth) => {
    if (depth > 512) fail('nested too deeply');
    ws();
    const c = text[pos];
    if (c === '{') return object(depth);
    if (c === '[') return array(depth);
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return v;
      }
    }
    return fail(`expected a value, found ${describe(pos)}`);
  };

  const object = (depth) => {
    const { line, column } = lineColumn(text, pos);
    const out = {};
    positions.set(out, { line, column });
    pos++;
    ws();
    if (text[pos] === '}') {
      pos++;
      return out;
    }
    for (;;) {
      ws();
      if (text[pos] !== '"') fail(`expected a key in double quotes, found ${describe(pos)}`);
      const keyAt = pos;
      const key = string();
      if (Object.prototype.hasOwnProperty.call(out, key)) fail(`duplicate key "${key}"`, keyAt);
      ws();
      expect(':', "':' after the key");
      Object.defineProperty(out, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
      ws();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === '}') {
        pos++;
        return out;
      }
      fail(`expected ',' or '}', found ${describe(pos)}`);
    }
  };

  const array = (depth) => {
    const { line, column } = lineColumn(text, pos);
    const out = [];
    positions.set(out, { line, column });
    pos++;
    ws();
    if (text[pos] === ']') {
      pos++;
      return out;
    }
    for (;;) {
      out.push(value(depth + 1));
      ws();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      if (text[pos] === ']') {
        pos++;
        return out;
      }
      fail(`expected ',' or ']', found ${describe(pos)}`);
    }
  };

  const result = value(0);
  ws();
  if (pos < text.length) fail(`unexpected ${describe(pos)} after the value`);
  return { value: result, positions };
}
