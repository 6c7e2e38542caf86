// UCUM units: how to show them to people, and the conversions the charts need so that one
// chart never mixes two units of one measurement (kg and [lb_av], Cel and [degF], ...).

/** UCUM code → what a patient reads. Codes not listed are shown as written. */
const DISPLAY: Readonly<Record<string, string>> = {
  "mm[Hg]": "mmHg",
  "/min": "/min",
  "kg/m2": "kg/m²",
  "Cel": "°C",
  "[degF]": "°F",
  "[lb_av]": "lb",
  "[in_i]": "in",
  "10*3/uL": "×10³/µL",
  "10*6/uL": "×10⁶/µL",
  "10*9/L": "×10⁹/L",
  "10*12/L": "×10¹²/L",
  "uL": "µL",
  "ug/dL": "µg/dL",
  "umol/L": "µmol/L",
  "{score}": "",
  "{#}": "",
  "1": "",
};

/** The unit as people write it (`mm[Hg]` → `mmHg`, `{score}` → nothing). */
export function displayUnit(unit: string | undefined | null): string {
  if (!unit) return "";
  return DISPLAY[unit] ?? unit;
}

/** A linear conversion to a canonical unit: canonical = value * factor + offset. */
interface Conversion {
  readonly factor: number;
  readonly offset?: number;
}

// Conversions by the unit a value comes in, for each canonical unit. Factors are exact
// definitions (avoirdupois pound, international inch) or, for concentrations, the molar mass
// of the substance: glucose 180.156 g/mol (1 mmol/L = 18.0156 mg/dL), cholesterol 386.65 g/mol
// (1 mmol/L = 38.665 mg/dL),
// triglycerides as triolein 885.7 g/mol (1 mmol/L = 88.57 mg/dL). HbA1c IFCC mmol/mol → NGSP %: % = 0.09148 * mmol/mol + 2.152
// (the NGSP/IFCC master equation, http://www.ngsp.org/ifccngsp.asp).
export const UNIT_FAMILIES: Readonly<Record<string, Readonly<Record<string, Conversion>>>> = {
  kg: { kg: { factor: 1 }, g: { factor: 0.001 }, "[lb_av]": { factor: 0.45359237 } },
  cm: { cm: { factor: 1 }, m: { factor: 100 }, mm: { factor: 0.1 }, "[in_i]": { factor: 2.54 } },
  Cel: { Cel: { factor: 1 }, "[degF]": { factor: 5 / 9, offset: -32 * 5 / 9 }, K: { factor: 1, offset: -273.15 } },
  "mm[Hg]": { "mm[Hg]": { factor: 1 } },
  "/min": { "/min": { factor: 1 }, "{beats}/min": { factor: 1 }, "{breaths}/min": { factor: 1 } },
  "kg/m2": { "kg/m2": { factor: 1 } },
  "%": { "%": { factor: 1 } },
  "mg/dL(glucose)": { "mg/dL": { factor: 1 }, "mmol/L": { factor: 18.0156 } },
  "mg/dL(cholesterol)": { "mg/dL": { factor: 1 }, "mmol/L": { factor: 38.665 } },
  "mg/dL(triglycerides)": { "mg/dL": { factor: 1 }, "mmol/L": { factor: 88.57 } },
  "%(HbA1c)": { "%": { factor: 1 }, "mmol/mol": { factor: 0.09148, offset: 2.152 } },
};

/** Convert `value` written in `unit` into the family's canonical unit, or null if the unit is
 *  not one the family knows (the caller reports it instead of plotting it). */
export function convert(value: number, unit: string, family: string): number | null {
  const conversion = UNIT_FAMILIES[family]?.[unit];
  if (!conversion) return null;
  return value * conversion.factor + (conversion.offset ?? 0);
}
