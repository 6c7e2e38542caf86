// The page's PDF writer (web/src/sharing/pdf.ts) and the health summary's PDF (pdfIps.ts):
// the file's structure (every cross-reference offset lands on its object), the standard
// fonts' folding (kept, decomposed, or "?" and counted), lines never wider than the text
// width, page breaks with a footer on every page, and the IPS of a real Synthea patient
// with every section's lines in the content. (tests/web/test_web_ips_pdf.py parses the
// page's PDF with pypdf.)
import assert from "node:assert/strict";
import { test } from "node:test";

import { buildIps, sectionsOf } from "../src/sharing/ips.ts";
import { breakLines, PdfDocument, textWidth, toWinAnsi } from "../src/sharing/pdf.ts";
import { ipsPdf } from "../src/sharing/pdfIps.ts";
import { fixtures } from "./fhir_fixtures.ts";

const latin1 = (bytes: Uint8Array): string => Array.from(bytes, (b) => String.fromCharCode(b)).join("");

function checkStructure(text: string): void {
  assert.ok(text.startsWith("%PDF-1.4\n"));
  assert.ok(text.endsWith("%%EOF\n"));
  const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)![1]);
  assert.ok(text.slice(startxref).startsWith("xref\n"));
  const rows = text.slice(startxref).split("\n").slice(3).filter((r) => / n $/.test(r));
  rows.forEach((row, i) => {
    const offset = Number(row.slice(0, 10));
    assert.ok(text.slice(offset).startsWith(`${i + 1} 0 obj\n`), `object ${i + 1} at ${offset}`);
  });
  for (const match of text.matchAll(/<< \/Length (\d+) >>\nstream\n/g)) {
    const start = match.index! + match[0].length;
    assert.equal(text.slice(start + Number(match[1]), start + Number(match[1]) + 10), "\nendstream");
  }
  for (let i = 0; i < text.length; i++) assert.ok(text.charCodeAt(i) < 256);
}

/** The text shown by the content streams, one string per Tj, octal escapes decoded. */
function shown(text: string): string[] {
  return [...text.matchAll(/\((?:[^()\\]|\\.)*\) Tj/g)].map((m) =>
    m[0].slice(1, -4).replace(/\\([0-7]{3}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e, 8)) : e)));
}

test("folding: kept, decomposed to the font's letter, or ? and counted", () => {
  assert.deepEqual(toWinAnsi("José Müller – O’Brien"), { codes: [...latin1(new Uint8Array([74, 111, 115, 233, 32, 77, 252, 108, 108, 101, 114, 32, 0x96, 32, 79, 0x92, 66, 114, 105, 101, 110]))].map((c) => c.charCodeAt(0)), lost: 0 });
  const dots = toWinAnsi("Łukasz Dvořák");
  assert.equal(String.fromCharCode(...dots.codes), "?ukasz Dvorák");
  assert.equal(dots.lost, 1);
  const cjk = toWinAnsi("山田 花子");
  assert.equal(String.fromCharCode(...cjk.codes), "?? ??");
  assert.equal(cjk.lost, 4);
  assert.equal(String.fromCharCode(...toWinAnsi("ﬁle\tA").codes), "file A"); // NFKC ligature, tab
});

test("a line is never wider than the width; a long word is cut, short ones are not", () => {
  const { codes } = toWinAnsi("Hemoglobin A1c/Hemoglobin.total in Blood " + "x".repeat(200) + " end");
  for (const width of [60, 200, 499]) {
    const lines = breakLines(codes, "regular", 11, width);
    for (const line of lines) assert.ok(textWidth(line, "regular", 11) <= width, `${textWidth(line, "regular", 11)} > ${width}`);
    const text = (l: readonly number[]) => String.fromCharCode(...l);
    assert.equal(lines.map(text).join("").replace(/ /g, ""), text(codes).replace(/ /g, ""));
    if (width === 499) {
      assert.deepEqual(lines.slice(0, 1).map(text), ["Hemoglobin A1c/Hemoglobin.total in Blood"]);
      assert.equal(text(lines.at(-1)!), "x".repeat(200).slice(-(200 - lines.slice(1, -1).reduce((n, l) => n + l.length, 0))) + " end");
    }
  }
});

test("many lines break onto pages, each with its footer", () => {
  const pdf = new PdfDocument({ title: "Test – 山田", lang: "en" });
  pdf.heading("A list", 1);
  for (let i = 0; i < 200; i++) pdf.bullet(`entry number ${i} (with some words to wrap around the line) ${"word ".repeat(i % 20)}end-${i}`);
  pdf.table(["Name", "Value"], Array.from({ length: 80 }, (_, i) => [`row ${i}`, `value ${i} `.repeat(i % 9 + 1)]), [1, 3]);
  const text = latin1(pdf.bytes((p, n) => `page ${p} of ${n}`, new Date(0)));
  checkStructure(text);
  assert.ok(pdf.pageCount > 5, `${pdf.pageCount} pages`);
  const strings = shown(text);
  for (let p = 1; p <= pdf.pageCount; p++) assert.ok(strings.includes(`page ${p} of ${pdf.pageCount}`));
  assert.equal(strings.filter((s) => s === "Name").length > 1, true, "the table's header is repeated on a new page");
  // An item is never split across two pages.
  const pages = text.split("endstream").map((stream) => shown(stream).join(" "));
  for (let i = 0; i < 200; i++) {
    const page = pages.findIndex((p) => p.includes(`entry number ${i} `));
    assert.ok(page >= 0 && new RegExp(`end-${i}\\b`).test(pages[page]!), `entry ${i} on one page`);
  }
  // The title keeps its characters in the metadata (UTF-16).
  assert.ok(text.includes("/Title <FEFF0054006500730074002020130020" + "5C71" + "7530>"));
  // y stays inside the page.
  for (const m of text.matchAll(/1 0 0 1 ([\d.]+) ([\d.-]+) Tm/g)) assert.ok(Number(m[2]) > 20 && Number(m[2]) < 800, m[0]);
});

test("the summary of a Synthea patient: every section's lines, and where characters were lost", () => {
  const resources = fixtures().synthea.map((f) => f.resource);
  const ips = buildIps(resources, { now: Date.UTC(2026, 0, 2), documentId: "00000000-0000-4000-8000-000000000000" });
  const made = ipsPdf(ips, new Date(0));
  const text = latin1(made.bytes);
  checkStructure(text);
  const all = shown(text).join(" ").replace(/\s+/g, " ");
  const sections = sectionsOf(ips);
  assert.ok(sections.reduce((n, s) => n + s.lines.length, 0) > 10);
  for (const { section, lines } of sections) {
    assert.ok(all.includes(section.title), section.title);
    for (const line of lines) assert.ok(all.includes(line.replace(/\s+/g, " ")), line);
  }
  assert.deepEqual(made.lost, []);

  const patient = ips.entry.find((e) => e.resource.resourceType === "Patient")!.resource;
  patient.name = [{ text: "山田 花子" }];
  const cjk = ipsPdf(ips, new Date(0));
  assert.deepEqual(cjk.lost, ["the patient's name"]);
  const cjkText = shown(latin1(cjk.bytes)).join(" ");
  assert.ok(cjkText.includes("Some characters in the patient's name cannot be shown"), cjkText.slice(0, 400));
});
