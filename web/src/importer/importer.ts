// What a dropped FHIR file becomes: one record per resource, as kizuna/storage/fhir/importer.py
// (import_bundle, import_resource, record_for) and ndjson.py (import_ndjson) make them — the
// canonical bytes, the content type and the scope label, byte for byte.
import { canonicalJson } from "./canonical.ts";
import { FhirValidationError, isObject, loadJson, pyRepr, type Issue, type Json, type JsonObject } from "./json.ts";
import type { Rules } from "./rules.ts";
import { Validator } from "./validate.ts";

export interface ImportedRecord {
  content: Uint8Array;
  contentType: string;
  resourceType: string;
  scopeLabel: string;
  fhirId: string | null;
  fullUrl: string | null;
  /** The timeline date as written (importer.TIMELINE_DATE), or null. */
  date: string | null;
}

export class Importer {
  readonly rules: Rules;
  readonly validator: Validator;

  constructor(rules: Rules) {
    this.rules = rules;
    this.validator = new Validator(rules);
  }

  /** scopes.scope_label: the resource type, or Type:category from the closed vocabulary. */
  scopeLabel(resource: JsonObject): string {
    const type = resource.resourceType as string;
    const vocabulary = this.rules.categories[type];
    if (vocabulary) {
      const value = resource[vocabulary.element];
      const items: Json[] = Array.isArray(value) ? value : value !== undefined && value !== null ? [value] : [];
      for (const item of items) {
        if (!vocabulary.coded) {
          if (typeof item === "string" && (vocabulary.systems[""] ?? []).includes(item)) return `${type}:${item}`;
          continue;
        }
        if (!isObject(item) || !Array.isArray(item.coding)) continue;
        for (const coding of item.coding) {
          if (!isObject(coding)) continue;
          // str(coding.get("system")): a missing system is looked up as "None"
          const codes = vocabulary.systems[typeof coding.system === "string" ? coding.system : "None"];
          if (codes && typeof coding.code === "string" && codes.includes(coding.code)) return `${type}:${coding.code}`;
        }
      }
    }
    return type;
  }

  timelineDate(resource: JsonObject): string | null {
    for (const path of this.rules.timelineDate[String(resource.resourceType)] ?? []) {
      let value: Json | undefined = resource;
      for (const step of path.split(".")) value = isObject(value) ? value[step] : undefined;
      if (typeof value === "string") return value;
    }
    return null;
  }

  recordFor(resource: JsonObject, fullUrl: string | null = null): ImportedRecord {
    const id = resource.id;
    return {
      content: canonicalJson(resource),
      contentType: this.rules.contentType,
      resourceType: String(resource.resourceType),
      scopeLabel: this.scopeLabel(resource),
      fhirId: typeof id === "string" ? id : null,
      fullUrl,
      date: this.timelineDate(resource),
    };
  }

  /** import_bundle: the whole Bundle validated (self-contained), then one record per entry. */
  importBundle(data: Uint8Array | string | JsonObject): ImportedRecord[] {
    const bundle = this.validator.validate(data, true);
    if (bundle.resourceType !== "Bundle") {
      throw new FhirValidationError([["resourceType", `expected a Bundle to import, got ${String(bundle.resourceType)}`]]);
    }
    const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
    const missing: Issue[] = [];
    entries.forEach((entry, i) => {
      if (!isObject(entry) || !isObject(entry.resource)) missing.push([`Bundle.entry[${i}]`, "entry has no resource to import"]);
    });
    if (missing.length) throw new FhirValidationError(missing);
    return entries.map((entry) => {
      const e = entry as JsonObject;
      return this.recordFor(e.resource as JsonObject, typeof e.fullUrl === "string" ? e.fullUrl : null);
    });
  }

  /** import_resource: one resource (any type but a Bundle is kept as one record). */
  importResource(data: Uint8Array | string | JsonObject): ImportedRecord {
    return this.recordFor(this.validator.validate(data));
  }

  /** import_ndjson: every line of every file validated, references checked across all the
   * files (a bulk export has one file per resource type); every problem as `name:line:path`.
   * Returns the records of each file, in order. */
  importNdjson(files: Array<{ name: string; bytes: Uint8Array }>): ImportedRecord[][] {
    const issues: Issue[] = [];
    const known = new Set<string>();
    const pending: [string, string][] = [];
    const resources: JsonObject[][] = files.map(() => []);
    files.forEach(({ name, bytes }, fileIndex) => {
     for (const [number, line] of ndjsonLines(bytes)) {
      const where = `${name}:${number}:`;
      let data: JsonObject;
      try {
        data = loadJson(line, this.rules.limits.jsonDepth);
      } catch (error) {
        if (!(error instanceof FhirValidationError)) throw error;
        issues.push(...error.issues.map(([p, r]): Issue => [`${where}${p}`, r]));
        continue;
      }
      const found = this.validator.findIssues(data);
      issues.push(...found.map(([p, r]): Issue => [`${where}${p}`, r]));
      const type = data.resourceType, id = data.id;
      if (typeof type === "string" && typeof id === "string") {
        known.add(`${type}/${id}`);
        if (UUID.test(id)) known.add(`urn:uuid:${id}`);
      }
      referencePaths(data, String(type ?? "None"), (path, ref) => pending.push([`${where}${path}`, ref]));
      if (!found.length) resources[fileIndex]?.push(data);
     }
    });
    for (const [where, ref] of pending) {
      const relative = NDJSON_RELATIVE.exec(ref);
      const target = relative ? `${relative[1]}/${relative[2]}` : ref;
      if ((relative || ref.startsWith("urn:uuid:")) && !known.has(target)) issues.push([where, `${pyRepr(ref)} names no resource in these files`]);
    }
    if (issues.length) throw new FhirValidationError(issues);
    return resources.map((list) => list.map((r) => this.recordFor(r)));
  }
}

const NDJSON_RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]+)?$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Lines as Python iterates a binary file (split after b"\n"), blank ones skipped. */
function* ndjsonLines(bytes: Uint8Array): Generator<[number, Uint8Array]> {
  let start = 0, number = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    end = end === -1 ? bytes.length : end + 1;
    number += 1;
    const line = bytes.subarray(start, end);
    if (line.some((b) => !(b === 0x20 || (b >= 0x09 && b <= 0x0d)))) yield [number, line];
    start = end;
  }
}

function referencePaths(value: Json, path: string, found: (path: string, ref: string) => void): void {
  if (Array.isArray(value)) value.forEach((item, i) => referencePaths(item, `${path}[${i}]`, found));
  else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (key === "reference" && typeof item === "string") found(`${path}.reference`, item);
      else referencePaths(item, `${path}.${key}`, found);
    }
  }
}
