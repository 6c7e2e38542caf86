// A small PDF writer for the page's readable documents (the health summary's PDF, pdfIps.ts):
// text, headings, bullet lists, two-column tables, automatic line and page breaks, a footer on
// every page. It writes PDF 1.4 with the standard fonts Helvetica and Helvetica-Bold, which every
// PDF reader has built in (nothing is embedded or fetched), so the text is real text: searchable,
// copyable, read aloud by screen readers.
//
// The standard fonts show WinAnsiEncoding only (Latin-1 and a few typographic marks). Text is
// folded as Python's IPS PDF folds it (kizuna/sharing/ips.py _pdf_text): NFKC, then a character
// the font has is kept, one that decomposes to a letter it has becomes that letter ("ő" → "o"),
// anything else is printed as "?" — and the document says so (`lost`), naming where, instead
// of silently printing something else. The exact text stays in the document's metadata title
// (Unicode there) and in the FHIR JSON the PDF is made from.

import { HELVETICA, HELVETICA_BOLD } from "./pdfFonts.ts";

/** WinAnsiEncoding's codes 0x80-0x9F: the Unicode characters they show. */
const WIN_ANSI_EXTRA: Record<number, number> = {
  0x20ac: 0x80, 0x201a: 0x82, 0x0192: 0x83, 0x201e: 0x84, 0x2026: 0x85, 0x2020: 0x86, 0x2021: 0x87,
  0x02c6: 0x88, 0x2030: 0x89, 0x0160: 0x8a, 0x2039: 0x8b, 0x0152: 0x8c, 0x017d: 0x8e, 0x2018: 0x91,
  0x2019: 0x92, 0x201c: 0x93, 0x201d: 0x94, 0x2022: 0x95, 0x2013: 0x96, 0x2014: 0x97, 0x02dc: 0x98,
  0x2122: 0x99, 0x0161: 0x9a, 0x203a: 0x9b, 0x0153: 0x9c, 0x017e: 0x9e, 0x0178: 0x9f,
};

/** The WinAnsi code that shows `codePoint`, or null when the standard fonts cannot show it. */
export function winAnsiCode(codePoint: number): number | null {
  if ((codePoint >= 0x20 && codePoint <= 0x7e) || (codePoint >= 0xa0 && codePoint <= 0xff)) return codePoint;
  return WIN_ANSI_EXTRA[codePoint] ?? null;
}

/** `text` as WinAnsi codes, folded (see the top of the file); `lost`: characters shown as "?".
 * Line breaks and tabs become spaces (a line of text is drawn as one line). */
export function toWinAnsi(text: string): { codes: number[]; lost: number } {
  const codes: number[] = [];
  let lost = 0;
  const flat = text.replace(/[\t\n\r\f\v]/g, " ");
  const direct = [...flat].map((ch) => winAnsiCode(ch.codePointAt(0)!));
  if (direct.every((c) => c !== null)) return { codes: direct as number[], lost: 0 };
  for (const ch of flat.normalize("NFKC")) {
    const code = winAnsiCode(ch.codePointAt(0)!);
    if (code !== null) {
      codes.push(code);
      continue;
    }
    const base = ch.normalize("NFKD").codePointAt(0);
    const folded = base === undefined ? null : winAnsiCode(base);
    if (folded !== null) codes.push(folded);
    else if ((ch.codePointAt(0) ?? 0) < 0x20) codes.push(0x20);
    else {
      codes.push(0x3f); // "?"
      lost += 1;
    }
  }
  return { codes, lost };
}

export type FontStyle = "regular" | "bold";

const FONTS: Record<FontStyle, { resource: string; base: string; widths: readonly number[] }> = {
  regular: { resource: "F1", base: "Helvetica", widths: HELVETICA },
  bold: { resource: "F2", base: "Helvetica-Bold", widths: HELVETICA_BOLD },
};

/** The width of WinAnsi `codes` in points at `size`. */
export function textWidth(codes: readonly number[], style: FontStyle, size: number): number {
  const widths = FONTS[style].widths;
  let sum = 0;
  for (const code of codes) sum += widths[code] ?? 500;
  return (sum * size) / 1000;
}

/** Break `codes` into lines no wider than `width` points: at spaces, and inside a word only
 * when the word alone is wider than a line. */
export function breakLines(codes: readonly number[], style: FontStyle, size: number, width: number): number[][] {
  const lines: number[][] = [];
  const words: number[][] = [];
  let word: number[] = [];
  for (const code of codes) {
    if (code === 0x20) {
      if (word.length) words.push(word);
      word = [];
    } else word.push(code);
  }
  if (word.length) words.push(word);
  const space = textWidth([0x20], style, size);
  let line: number[] = [];
  let lineWidth = 0;
  for (let w of words) {
    let ww = textWidth(w, style, size);
    while (ww > width) {
      // A word wider than the line: as much as fits, on a line of its own.
      if (line.length) {
        lines.push(line);
        line = [];
        lineWidth = 0;
      }
      let cut = 1;
      while (cut < w.length && textWidth(w.slice(0, cut + 1), style, size) <= width) cut += 1;
      lines.push(w.slice(0, cut));
      w = w.slice(cut);
      ww = textWidth(w, style, size);
    }
    if (!w.length) continue;
    if (line.length && lineWidth + space + ww > width) {
      lines.push(line);
      line = [];
      lineWidth = 0;
    }
    if (line.length) {
      line.push(0x20);
      lineWidth += space;
    }
    line.push(...w);
    lineWidth += ww;
  }
  if (line.length || !lines.length) lines.push(line);
  return lines;
}

/** A PDF literal string of WinAnsi codes, ASCII only (others as octal escapes). */
function literal(codes: readonly number[]): string {
  let out = "(";
  for (const code of codes) {
    if (code === 0x28 || code === 0x29 || code === 0x5c) out += "\\" + String.fromCharCode(code);
    else if (code < 0x20 || code > 0x7e) out += "\\" + code.toString(8).padStart(3, "0");
    else out += String.fromCharCode(code);
  }
  return out + ")";
}

/** A PDF text string that keeps any Unicode (metadata): UTF-16BE with its byte-order mark. */
function unicodeString(text: string): string {
  let hex = "<FEFF";
  for (let i = 0; i < text.length; i++) hex += text.charCodeAt(i).toString(16).padStart(4, "0").toUpperCase();
  return hex + ">";
}

const fmt = (n: number): string => (Math.round(n * 100) / 100).toString();

/** A4 in points, and the margins (about 17 mm; 20 mm at the bottom, for the footer). */
const PAGE = { width: 595.28, height: 841.89, left: 48, right: 48, top: 56, bottom: 64 };

export type PdfMeta = { title: string; lang: string; creator?: string };

/** Where `lost` characters were found: the label the caller gave when writing that text. */
export type Lost = { where: string; count: number };

export class PdfDocument {
  readonly #meta: PdfMeta;
  readonly #pages: string[][] = [];
  #y = 0;
  readonly #lost = new Map<string, number>();

  constructor(meta: PdfMeta) {
    this.#meta = meta;
    this.#newPage();
  }

  /** The width text may take. */
  get contentWidth(): number {
    return PAGE.width - PAGE.left - PAGE.right;
  }

  /** Characters the standard fonts could not show (printed as "?"), per place. */
  get lost(): Lost[] {
    return [...this.#lost].map(([where, count]) => ({ where, count }));
  }

  get pageCount(): number {
    return this.#pages.length;
  }

  #newPage(): void {
    this.#pages.push([]);
    this.#y = PAGE.height - PAGE.top;
  }

  #ops(): string[] {
    return this.#pages[this.#pages.length - 1]!;
  }

  /** Room for `height` more points on this page, else a new page. */
  #need(height: number): void {
    if (this.#y - height < PAGE.bottom && this.#y < PAGE.height - PAGE.top) this.#newPage();
  }

  /** Folded codes of `text`, counting lost characters under `where`. */
  encode(text: string, where: string): number[] {
    const { codes, lost } = toWinAnsi(text);
    if (lost) this.#lost.set(where, (this.#lost.get(where) ?? 0) + lost);
    return codes;
  }

  #draw(codes: readonly number[], x: number, y: number, style: FontStyle, size: number, gray = 0): void {
    this.#ops().push(`BT /${FONTS[style].resource} ${fmt(size)} Tf ${fmt(gray)} g 1 0 0 1 ${fmt(x)} ${fmt(y)} Tm ${literal(codes)} Tj ET`);
  }

  #rule(x1: number, x2: number, y: number, gray = 0.6, width = 0.5): void {
    this.#ops().push(`${fmt(gray)} G ${fmt(width)} w ${fmt(x1)} ${fmt(y)} m ${fmt(x2)} ${fmt(y)} l S`);
  }

  /** Vertical space. */
  space(points: number): void {
    this.#y -= points;
  }

  /** A heading (level 1: the title; 2: a section), kept on a page with the next two lines. */
  heading(text: string, level: 1 | 2, where = "heading"): void {
    const size = level === 1 ? 18 : 14;
    const lines = breakLines(this.encode(text, where), "bold", size, this.contentWidth);
    this.space(level === 1 ? 0 : 10);
    this.#need(lines.length * size * 1.3 + 2 * 11 * 1.4);
    for (const line of lines) {
      this.#y -= size * 1.15;
      this.#draw(line, PAGE.left, this.#y, "bold", size, 0.1);
      this.#y -= size * 0.15;
    }
    if (level === 2) {
      this.#rule(PAGE.left, PAGE.width - PAGE.right, this.#y - 3, 0.55, 0.75);
      this.#y -= 8;
    } else this.#y -= 6;
  }

  /** A paragraph, wrapped (`indent` points from the left margin). */
  paragraph(text: string, o: { style?: FontStyle; size?: number; indent?: number; where?: string; gray?: number } = {}): void {
    const style = o.style ?? "regular";
    const size = o.size ?? 11;
    const indent = o.indent ?? 0;
    const lines = breakLines(this.encode(text, o.where ?? "text"), style, size, this.contentWidth - indent);
    for (const line of lines) {
      this.#need(size * 1.4);
      this.#y -= size * 1.4;
      this.#draw(line, PAGE.left + indent, this.#y + size * 0.3, style, size, o.gray ?? 0);
    }
  }

  /** A bulleted list item: the bullet, and the text wrapped beside it (on one page when it
   * fits on one). */
  bullet(text: string, where = "text"): void {
    const size = 11;
    const indent = 14;
    const lines = breakLines(this.encode(text, where), "regular", size, this.contentWidth - indent);
    this.#need(lines.length * size * 1.4); // an item is kept on one page
    lines.forEach((line, i) => {
      this.#need(size * 1.4);
      this.#y -= size * 1.4;
      if (i === 0) this.#draw([0x95], PAGE.left + 3, this.#y + size * 0.3, "regular", size);
      this.#draw(line, PAGE.left + indent, this.#y + size * 0.3, "regular", size);
    });
    this.#y -= 2;
  }

  /** A table: a bold header row (repeated on each new page; none when null), rows wrapped
   * cell by cell and kept whole on a page; `widths` are the columns' shares of the text width. */
  table(header: readonly string[] | null, rows: readonly (readonly string[])[], widths: readonly number[], where = "table"): void {
    const size = 10.5;
    const lead = size * 1.35;
    const pad = 4;
    const total = widths.reduce((a, b) => a + b, 0);
    const columns = widths.map((w) => (w / total) * this.contentWidth);
    const cells = (row: readonly string[], style: FontStyle) =>
      row.map((text, i) => breakLines(this.encode(text, where), style, size, columns[i]! - 2 * pad));
    const drawRow = (lines: number[][][], style: FontStyle, shade: boolean) => {
      const height = Math.max(...lines.map((l) => l.length)) * lead + 2 * pad;
      const top = this.#y;
      if (shade) this.#ops().push(`0.93 g ${fmt(PAGE.left)} ${fmt(top - height)} ${fmt(this.contentWidth)} ${fmt(height)} re f`);
      let x = PAGE.left;
      lines.forEach((cell, i) => {
        cell.forEach((line, j) => this.#draw(line, x + pad, top - pad - (j + 1) * lead + size * 0.3, style, size));
        x += columns[i]!;
      });
      this.#y = top - height;
      this.#rule(PAGE.left, PAGE.width - PAGE.right, this.#y, 0.75, 0.5);
    };
    const head = header ? cells(header, "bold") : null;
    const headHeight = head ? Math.max(...head.map((l) => l.length)) * lead + 2 * pad : 0;
    this.#need(headHeight + lead + 2 * pad);
    if (head) drawRow(head, "bold", true);
    else this.#rule(PAGE.left, PAGE.width - PAGE.right, this.#y, 0.75, 0.5);
    for (const row of rows) {
      const body = cells(row, "regular");
      const height = Math.max(...body.map((l) => l.length)) * lead + 2 * pad;
      if (this.#y - height < PAGE.bottom) {
        this.#newPage();
        if (head) drawRow(head, "bold", true);
      }
      drawRow(body, "regular", false);
    }
    this.#y -= 4;
  }

  /** The file: a footer on every page (`footer(page, pages)`), then the objects, the
   * cross-reference table and the trailer. ASCII only, so string offsets are byte offsets. */
  bytes(footer: (page: number, pages: number) => string, created: Date = new Date()): Uint8Array<ArrayBuffer> {
    const pages = this.#pages.length;
    const objects: string[] = [];
    const add = (body: string): number => objects.push(body);
    const catalog = add("");
    const pagesRef = add("");
    const regular = add(`<< /Type /Font /Subtype /Type1 /BaseFont /${FONTS.regular.base} /Encoding /WinAnsiEncoding >>`);
    const bold = add(`<< /Type /Font /Subtype /Type1 /BaseFont /${FONTS.bold.base} /Encoding /WinAnsiEncoding >>`);
    const stamp = created.toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const info = add(`<< /Title ${unicodeString(this.#meta.title)} /Creator ${unicodeString(this.#meta.creator ?? "Kizuna")} /Producer (Kizuna web app) /CreationDate (D:${stamp}Z) >>`);
    const kids: number[] = [];
    this.#pages.forEach((ops, i) => {
      const foot = this.encode(footer(i + 1, pages), "footer");
      const lines = [...ops, `BT /F1 9 Tf 0.35 g 1 0 0 1 ${fmt(PAGE.left)} ${fmt(PAGE.bottom - 28)} Tm ${literal(foot)} Tj ET`];
      const stream = lines.join("\n");
      const content = add(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
      kids.push(add(`<< /Type /Page /Parent ${pagesRef} 0 R /MediaBox [0 0 ${PAGE.width} ${PAGE.height}] /Resources << /Font << /F1 ${regular} 0 R /F2 ${bold} 0 R >> >> /Contents ${content} 0 R >>`));
    });
    objects[catalog - 1] = `<< /Type /Catalog /Pages ${pagesRef} 0 R /Lang ${unicodeString(this.#meta.lang)} /ViewerPreferences << /DisplayDocTitle true >> >>`;
    objects[pagesRef - 1] = `<< /Type /Pages /Kids [${kids.map((k) => `${k} 0 R`).join(" ")}] /Count ${pages} >>`;
    let out = "%PDF-1.4\n%\u00e2\u00e3\u00cf\u00d3\n";
    const offsets: number[] = [];
    objects.forEach((body, i) => {
      offsets.push(out.length);
      out += `${i + 1} 0 obj\n${body}\nendobj\n`;
    });
    const xref = out.length;
    out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
    for (const offset of offsets) out += `${offset.toString().padStart(10, "0")} 00000 n \n`;
    out += `trailer\n<< /Size ${objects.length + 1} /Root ${catalog} 0 R /Info ${info} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
    // Latin-1 bytes (the binary-marker comment is the only non-ASCII; one byte per character).
    const bytes = new Uint8Array(out.length);
    for (let i = 0; i < out.length; i++) bytes[i] = out.charCodeAt(i);
    return bytes;
  }
}
