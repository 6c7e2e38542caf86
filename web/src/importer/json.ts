// FHIR JSON read like kizuna/storage/fhir/jsonio.py reads it: UTF-8 (a BOM ignored), nesting
// checked on the text first (kizuna/jsondepth.py's scan, same limit), duplicate keys and
// NaN/Infinity refused, and numbers kept as written: in FHIR the precision of a decimal is part
// of its value (1.50 is not 1.5), and the canonical bytes (canonical.ts) must reproduce it, so
// numbers are JsonNumber (their literal), never JS doubles.

export class JsonNumber {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  /** An integer literal (no fraction, no exponent): what Python's json reads as int. */
  get isInteger(): boolean {
    return /^-?\d+$/.test(this.text);
  }
}

export type Json = string | boolean | null | JsonNumber | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export type Issue = [path: string, reason: string];

/** A problem with the input as a whole, or every problem of a resource, as (path, reason). */
export class FhirValidationError extends Error {
  readonly issues: Issue[];
  constructor(issues: Issue[]) {
    super(issues.map(([p, r]) => (p ? `${p}: ${r}` : r)).join("; "));
    this.name = "FhirValidationError";
    this.issues = issues;
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber);
}

// kizuna/jsondepth.py: strings are skipped (an unterminated one runs to the end), then brackets
// are counted. Linear in the text.
const JSON_STRING = /"[^"\\]*(?:\\.[^"\\]*)*"?/gs;
const NOT_BRACKET = /[^[\]{}]+/g;

export function nestingExceeds(text: string, limit: number): boolean {
  const brackets = text.replace(JSON_STRING, "").replace(NOT_BRACKET, "");
  let depth = 0;
  for (const char of brackets) {
    if (char === "[" || char === "{") {
      depth += 1;
      if (depth > limit) return true;
    } else {
      depth -= 1;
    }
  }
  return false;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Where and why bytes are not UTF-8, worded as Python's UnicodeDecodeError (reason, start). */
function utf8Problem(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    let need = 0, low = 0x80, high = 0xbf;
    if (b < 0x80) { i += 1; continue; }
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) { need = 2; if (b === 0xe0) low = 0xa0; if (b === 0xed) high = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; if (b === 0xf0) low = 0x90; if (b === 0xf4) high = 0x8f; }
    else return `invalid start byte at byte ${i}`;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return `unexpected end of data at byte ${i}`;
      if (c < (k === 1 ? low : 0x80) || c > (k === 1 ? high : 0xbf)) return `invalid continuation byte at byte ${i}`;
    }
    i += need + 1;
  }
  return "invalid data";
}

export function decodeUtf8(bytes: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new FhirValidationError([["", `not UTF-8 text: ${utf8Problem(bytes)}`]]);
  }
  return text.startsWith("\ufeff") ? text.slice(1) : text;
}

class Parser {
  private i = 0;
  private readonly s: string;
  constructor(text: string) {
    this.s = text;
  }

  fail(what: string): never {
    const before = this.s.slice(0, this.i);
    const line = before.split("\n").length;
    const column = this.i - before.lastIndexOf("\n");
    throw new FhirValidationError([["", `not valid JSON: ${what}: line ${line} column ${column} (char ${this.i})`]]);
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.i += 1;
      else break;
    }
  }

  document(): Json {
    this.ws();
    const value = this.value();
    this.ws();
    if (this.i !== this.s.length) this.fail("Extra data");
    return value;
  }

  value(): Json {
    const c = this.s[this.i];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return value;
      }
    }
    for (const word of ["NaN", "Infinity", "-Infinity"]) {
      if (this.s.startsWith(word, this.i)) {
        throw new FhirValidationError([["", `not valid JSON: ${word} is not a JSON number FHIR allows`]]);
      }
    }
    return this.fail("Expecting value");
  }

  object(): JsonObject {
    this.i += 1;
    const out: JsonObject = Object.create(null) as JsonObject;
    this.ws();
    if (this.s[this.i] === "}") {
      this.i += 1;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail("Expecting property name enclosed in double quotes");
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ":") this.fail("Expecting ':' delimiter");
      this.i += 1;
      this.ws();
      const value = this.value();
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        throw new FhirValidationError([["", `duplicate JSON key ${pyRepr(key)}`]]);
      }
      out[key] = value;
      this.ws();
      const c = this.s[this.i];
      this.i += 1;
      if (c === "}") return out;
      if (c !== ",") {
        this.i -= 1;
        this.fail("Expecting ',' delimiter");
      }
    }
  }

  array(): Json[] {
    this.i += 1;
    const out: Json[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i += 1;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value());
      this.ws();
      const c = this.s[this.i];
      this.i += 1;
      if (c === "]") return out;
      if (c !== ",") {
        this.i -= 1;
        this.fail("Expecting ',' delimiter");
      }
    }
  }

  string(): string {
    const s = this.s;
    let i = this.i + 1;
    let out = "";
    for (;;) {
      const start = i;
      while (i < s.length) {
        const c = s.charCodeAt(i);
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        i += 1;
      }
      out += s.slice(start, i);
      if (i >= s.length) {
        this.i = i;
        this.fail("Unterminated string starting at");
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.i = i + 1;
        return out;
      }
      if (c < 0x20) {
        this.i = i;
        this.fail("Invalid control character at");
      }
      const e = s[i + 1];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i += 2;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) {
        out += String.fromCharCode(parseInt(s.slice(i + 2, i + 6), 16));
        i += 6;
      } else {
        this.i = i;
        this.fail("Invalid \\escape");
      }
    }
  }

  number(): JsonNumber {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 4096));
    if (!match || match[0] === "-") this.fail("Expecting value");
    this.i += match[0].length;
    return new JsonNumber(match[0]);
  }
}

/** Decode one JSON object (FHIR resource) from bytes or text; refusals as FhirValidationError
 * with path "" (jsonio.load_json's rules). */
export function loadJson(data: Uint8Array | string, maxDepth: number): JsonObject {
  const text = typeof data === "string" ? data : decodeUtf8(data);
  if (nestingExceeds(text, maxDepth)) throw new FhirValidationError([["", "JSON nested too deeply"]]);
  const value = new Parser(text).document();
  if (!isObject(value)) {
    const kind = value === null ? "NoneType" : Array.isArray(value) ? "list" : typeof value === "string" ? "str"
      : typeof value === "boolean" ? "bool" : value.isInteger ? "int" : "Decimal";
    throw new FhirValidationError([["", `expected a JSON object, got ${kind}`]]);
  }
  return value;
}

/** Python's repr() of a str, as the Python side's messages show values. */
export function pyRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + quote;
}
