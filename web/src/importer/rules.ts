// The shape of rules.generated.json, written by `python -m kizuna.storage.fhir.webrules` from
// the Python validator's own tables (never edited by hand; tests/web/test_import_parity.py
// fails when the committed file is stale).

/** [kind, isList, target class, allowed reference types, required (1: element, 2: primitive
 * that an extension may stand in for), primitive type, required code set, required coding]. */
export type Member = [
  kind: string,
  isList: 0 | 1,
  target: string | null,
  referenceTypes: string[] | null,
  required: 0 | 1 | 2,
  primitive: string | null,
  codeSet: number | null,
  coding: [name: string, system: string, codeSet: number] | null,
];

export interface ClassRules {
  e: Record<string, Member>;
  req: Record<string, string | null>;
  oneOf?: [prefix: string, required: boolean, fields: string[]][];
}

export interface PrimitiveRules {
  json: "string" | "integer" | "boolean" | "other";
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  ge?: number;
  le?: number;
}

export interface CategoryRules {
  element: string;
  coded: boolean;
  systems: Record<string, string[]>;
}

export interface Rules {
  format: number;
  contentType: string;
  limits: { jsonDepth: number; elementDepth: number; idLength: number };
  resources: string[];
  primitives: Record<string, PrimitiveRules>;
  codeSets: string[][];
  classes: Record<string, ClassRules>;
  categories: Record<string, CategoryRules>;
  timelineDate: Record<string, string[]>;
}

export const RULES_FORMAT = 1;

/** Check a decoded rules file before it is trusted. */
export function checkRules(value: unknown): Rules {
  const rules = value as Rules;
  if (typeof rules !== "object" || rules === null || rules.format !== RULES_FORMAT || !rules.classes) {
    throw new Error(`FHIR rules of format ${String((rules as { format?: unknown } | null)?.format)}, expected ${RULES_FORMAT}: regenerate rules.generated.json`);
  }
  return rules;
}

let loaded: Promise<Rules> | null = null;

/** The rules, loaded once (a separate chunk in the page's build: only the Add page needs them). */
export function loadRules(): Promise<Rules> {
  loaded ??= import("./rules.generated.json", { with: { type: "json" } }).then((module) => checkRules(module.default));
  return loaded;
}
