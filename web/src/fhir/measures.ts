// The measurements Kizuna knows by LOINC code: how they are charted (one chart per
// measurement, blood pressure's two components together), the unit family their values are
// converted into, and a default normal range for records that carry none. The charts
// (series.ts) and the timeline's flags (summarize.ts) read this one table.

import { convert } from "./units.ts";

export const LOINC = "http://loinc.org";

export interface LineDefinition {
  readonly code: string;
  readonly name: string;
  /** Other LOINC codes measured the same way, plotted on this line. */
  readonly alsoCodes?: readonly string[];
  readonly range?: { readonly low: number | null; readonly high: number | null };
}

export interface ChartDefinition {
  readonly key: string;
  readonly title: string;
  /** The unit family (units.ts UNIT_FAMILIES) and its canonical UCUM unit. */
  readonly family: string;
  readonly unit: string;
  /** Panels whose components carry the lines' codes (blood pressure 85354-9). */
  readonly panels?: readonly string[];
  readonly lines: readonly LineDefinition[];
}

// The measurements charted first, in this order. Default ranges (adults) apply to points whose
// record carries neither a referenceRange nor an interpretation:
// - blood pressure 90–120 / 60–80 mmHg: AHA "normal" (systolic < 120 and diastolic < 80,
//   https://www.heart.org/en/health-topics/high-blood-pressure/understanding-blood-pressure-readings),
//   lower bounds as Synthea's own ranges;
// - heart rate 60–100 /min (AHA, resting adult); respiratory rate 12–20 /min and oxygen
//   saturation 95–100 % (as Synthea and MedlinePlus "Vital signs");
// - BMI 18.5–24.9 kg/m² (WHO "healthy weight");
// - body temperature 36.1–37.2 °C (MedlinePlus "Body temperature norms");
// - glucose 70–99 mg/dL (ADA, fasting plasma glucose; a random value may be higher);
// - HbA1c 4.0–5.6 % (ADA: 5.7 % and above is prediabetes);
// - total cholesterol < 200, LDL < 100, HDL ≥ 40, triglycerides < 150 mg/dL (NCEP ATP III).
// Weight and height have no range (it depends on the person).
export const CHARTS: readonly ChartDefinition[] = [
  {
    key: "blood-pressure", title: "Blood pressure", family: "mm[Hg]", unit: "mm[Hg]",
    panels: ["85354-9", "55284-4", "35094-2"],
    lines: [
      { code: "8480-6", name: "Systolic", range: { low: 90, high: 120 } },
      { code: "8462-4", name: "Diastolic", range: { low: 60, high: 80 } },
    ],
  },
  { key: "heart-rate", title: "Heart rate", family: "/min", unit: "/min",
    lines: [{ code: "8867-4", name: "Heart rate", range: { low: 60, high: 100 } }] },
  { key: "weight", title: "Weight", family: "kg", unit: "kg",
    lines: [{ code: "29463-7", name: "Weight", alsoCodes: ["3141-9"] }] },
  { key: "bmi", title: "Body mass index (BMI)", family: "kg/m2", unit: "kg/m2",
    lines: [{ code: "39156-5", name: "BMI", range: { low: 18.5, high: 24.9 } }] },
  { key: "temperature", title: "Body temperature", family: "Cel", unit: "Cel",
    lines: [{ code: "8310-5", name: "Temperature", alsoCodes: ["8331-1"], range: { low: 36.1, high: 37.2 } }] },
  { key: "glucose", title: "Glucose", family: "mg/dL(glucose)", unit: "mg/dL",
    lines: [
      { code: "2339-0", name: "Glucose (blood)", range: { low: 70, high: 99 } },
      { code: "2345-7", name: "Glucose (serum/plasma)", range: { low: 70, high: 99 } },
    ] },
  { key: "hba1c", title: "HbA1c", family: "%(HbA1c)", unit: "%",
    lines: [{ code: "4548-4", name: "HbA1c", alsoCodes: ["17856-6"], range: { low: 4.0, high: 5.6 } }] },
  { key: "cholesterol", title: "Total cholesterol", family: "mg/dL(cholesterol)", unit: "mg/dL",
    lines: [{ code: "2093-3", name: "Total cholesterol", range: { low: null, high: 200 } }] },
  { key: "ldl", title: "LDL cholesterol", family: "mg/dL(cholesterol)", unit: "mg/dL",
    lines: [{ code: "18262-6", name: "LDL", alsoCodes: ["13457-7", "2089-1"], range: { low: null, high: 100 } }] },
  { key: "hdl", title: "HDL cholesterol", family: "mg/dL(cholesterol)", unit: "mg/dL",
    lines: [{ code: "2085-9", name: "HDL", range: { low: 40, high: null } }] },
  { key: "triglycerides", title: "Triglycerides", family: "mg/dL(triglycerides)", unit: "mg/dL",
    lines: [{ code: "2571-8", name: "Triglycerides", range: { low: null, high: 150 } }] },
  { key: "respiratory-rate", title: "Respiratory rate", family: "/min", unit: "/min",
    lines: [{ code: "9279-1", name: "Respiratory rate", range: { low: 12, high: 20 } }] },
  { key: "oxygen-saturation", title: "Oxygen saturation", family: "%", unit: "%",
    lines: [{ code: "2708-6", name: "Oxygen saturation", alsoCodes: ["59408-5"], range: { low: 95, high: 100 } }] },
  { key: "height", title: "Height", family: "cm", unit: "cm",
    lines: [{ code: "8302-2", name: "Height", alsoCodes: ["8306-3"] }] },
];

export interface DefaultRange {
  readonly low: number | null;
  readonly high: number | null;
  /** The unit family and canonical unit the range is written in. */
  readonly family: string;
  readonly unit: string;
}

const BY_CODE = new Map<string, DefaultRange>();
for (const chart of CHARTS) {
  for (const line of chart.lines) {
    if (!line.range) continue;
    for (const code of [line.code, ...(line.alsoCodes ?? [])]) {
      BY_CODE.set(code, { ...line.range, family: chart.family, unit: chart.unit });
    }
  }
}

/** The default normal range of a LOINC code (see the sources above CHARTS), or null. */
export function defaultRange(code: string): DefaultRange | null {
  return BY_CODE.get(code) ?? null;
}

/** A value written in `unit` against the default range of `code`: its flag, "normal", or
 *  null when there is no default or the unit cannot be converted. */
export function flagByDefault(code: string, value: number, unit: string): "high" | "low" | "normal" | null {
  const range = defaultRange(code);
  if (!range) return null;
  const v = convert(value, unit, range.family);
  if (v === null) return null;
  if (range.high !== null && v > range.high) return "high";
  if (range.low !== null && v < range.low) return "low";
  return "normal";
}
