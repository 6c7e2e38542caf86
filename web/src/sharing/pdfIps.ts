// The International Patient Summary as a readable PDF, made in the page (the Summary page loads
// this module only when the PDF is asked for). The content is Python's ips_pdf
// (kizuna/sharing/ips.py): the title, the patient (name, birth date, sex, when the summary was
// made), then every section of the document with its entries as the reader's lines
// (sectionsOf, the same lines the page shows), or why it is empty. Written by pdf.ts with the
// standard fonts; characters they cannot show are printed as "?" as Python does, and the first
// page says where that happened (Python does not say it; the FHIR JSON keeps them exactly).

import { patientName, sectionsOf, type IpsBundle } from "./ips.ts";
import { PdfDocument, toWinAnsi } from "./pdf.ts";

export type IpsPdf = {
  bytes: Uint8Array<ArrayBuffer>;
  /** Where characters the PDF's font cannot show were printed as "?" (e.g. "the patient's name"). */
  lost: string[];
};

const NAME = "the patient's name";

/** What cannot be shown in the PDF's font, per place, before anything is written (the note
 * about it goes on the first page). */
export function unshowable(ips: IpsBundle): string[] {
  const patient = ips.entry.find((e) => e.resource.resourceType === "Patient")?.resource ?? {};
  const places: string[] = [];
  if (toWinAnsi(patientName(patient)).lost) places.push(NAME);
  for (const { section, lines } of sectionsOf(ips)) {
    if (lines.some((line) => toWinAnsi(line).lost)) places.push(section.title);
  }
  return places;
}

/** The summary's PDF (A4). */
export function ipsPdf(ips: IpsBundle, created: Date = new Date()): IpsPdf {
  const patient = ips.entry.find((e) => e.resource.resourceType === "Patient")?.resource ?? {};
  const name = patientName(patient);
  const lost = unshowable(ips);
  const pdf = new PdfDocument({ title: `International Patient Summary - ${name}`, lang: "en" });
  pdf.heading("International Patient Summary", 1);
  pdf.table(null, [
    ["Patient", name],
    ["Born", typeof patient.birthDate === "string" ? patient.birthDate : "unknown"],
    ["Sex", typeof patient.gender === "string" ? patient.gender : "unknown"],
    ["Made", ips.timestamp],
  ], [1, 4], NAME);
  if (lost.length) {
    pdf.space(4);
    pdf.paragraph(
      `Some characters in ${lost.join(", ")} cannot be shown by this PDF's standard font and are printed as "?". ` +
      "The FHIR JSON download of this summary keeps every character exactly.",
      { style: "bold", size: 10 },
    );
  }
  pdf.paragraph("Made by Kizuna from the patient's own records. It lists what those records hold, not a clinical assessment.", { size: 9.5, gray: 0.3 });
  for (const { section, lines } of sectionsOf(ips)) {
    pdf.heading(`${section.title} (${lines.length})`, 2, section.title);
    if (!lines.length) pdf.paragraph(`No ${section.title.toLowerCase()} in the patient's records.`);
    for (const line of lines) pdf.bullet(line, section.title);
  }
  const short = toWinAnsi(name).lost ? "" : ` - ${name}`;
  const bytes = pdf.bytes((page, pages) => `International Patient Summary${short} - made ${ips.timestamp.slice(0, 10)} - page ${page} of ${pages}`, created);
  return { bytes, lost };
}
