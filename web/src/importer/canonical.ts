// Canonical JSON, byte for byte as kizuna/storage/fhir/canonical.py writes it (docs/fhir.md
// "Canonical form"): keys sorted by UTF-16 code units, no whitespace, only '"', '\' and control
// characters escaped, decimals at their written precision in plain notation.
import { FhirValidationError, JsonNumber, type Json } from "./json.ts";

export const CONTENT_TYPE = "application/fhir+json";

const SHORT: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" };

function string(text: string, out: string[]): void {
  let s = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    const code = text.charCodeAt(i);
    const short = SHORT[ch];
    if (short !== undefined) s += short;
    else if (code < 0x20) s += `\\u${code.toString(16).padStart(4, "0")}`;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff) {
      s += ch + (text[i + 1] as string);
      i += 1;
    } else if (code >= 0xd800 && code <= 0xdfff) {
      throw new FhirValidationError([["", `lone surrogate U+${code.toString(16).toUpperCase().padStart(4, "0")} cannot be encoded as UTF-8`]]);
    } else s += ch;
  }
  out.push(s + '"');
}

/** format(Decimal(literal), "f") with negative zero unsigned; int(literal) for integers. */
export function canonicalNumber(literal: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!match) throw new FhirValidationError([["", `${literal} is not a JSON number`]]);
  const [, sign, whole = "", fraction, exponent] = match;
  if (fraction === undefined && exponent === undefined) {
    const digits = whole.replace(/^0+(?=\d)/, "");
    return digits === "0" ? "0" : sign + digits;
  }
  let digits = (whole + (fraction ?? "")).replace(/^0+(?=\d)/, "");
  const exp = Number(exponent ?? 0) - (fraction?.length ?? 0);
  const zero = /^0+$/.test(digits);
  let text: string;
  if (exp >= 0) {
    text = zero ? "0" : digits + "0".repeat(exp);
  } else {
    const places = -exp;
    if (digits.length <= places) digits = "0".repeat(places - digits.length + 1) + digits;
    text = `${digits.slice(0, digits.length - places)}.${digits.slice(digits.length - places)}`;
  }
  return zero ? text : sign + text;
}

function write(value: Json, out: string[]): void {
  if (typeof value === "string") string(value, out);
  else if (value === true) out.push("true");
  else if (value === false) out.push("false");
  else if (value === null) out.push("null");
  else if (value instanceof JsonNumber) out.push(canonicalNumber(value.text));
  else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((item, i) => {
      if (i) out.push(",");
      write(item, out);
    });
    out.push("]");
  } else {
    out.push("{");
    // JS string comparison is by UTF-16 code units, as canonical.py's _utf16_key sorts.
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    keys.forEach((key, i) => {
      if (i) out.push(",");
      string(key, out);
      out.push(":");
      write(value[key] as Json, out);
    });
    out.push("}");
  }
}

/** The canonical UTF-8 bytes of a decoded JSON value (a validated FHIR resource). */
export function canonicalJson(value: Json): Uint8Array {
  const out: string[] = [];
  write(value, out);
  return new TextEncoder().encode(out.join(""));
}
