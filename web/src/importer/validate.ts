// Validation of FHIR R4 resources and Bundles in the page, by the Python validator's rules
// (kizuna/storage/fhir/validate.py, read from rules.generated.json): the same accept/refuse,
// the same paths. Two passes, as in Python:
//  1. structure, what fhir.resources (pydantic) checks there: element names, lists vs single
//     values, required elements, primitive JSON types, patterns and bounds, choice elements
//     (value[x]: one at most), extensions standing in for required primitives;
//  2. Kizuna's walk, ported line by line: required value sets, real calendar dates, FHIR JSON
//     types, empty/null, depth, resource types, contained and in-Bundle references.
// Walk issues win over structure issues at the same path (Python keeps its own message there).
import { datetimeProblem, dateProblem, timeProblem } from "./dates.ts";
import { FhirValidationError, isObject, JsonNumber, loadJson, pyRepr, type Issue, type Json, type JsonObject } from "./json.ts";
import type { ClassRules, Member, Rules } from "./rules.ts";

const K = 0, LIST = 1, TARGET = 2, REFS = 3, REQ = 4, PRIM = 5, CODES = 6, CODING = 7;

const RELATIVE_REF = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;
const RESTFUL_URL = /^(https?:\/\/.+\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;

class TooDeep extends Error {
  readonly path: string;
  constructor(path: string) {
    super(path);
    this.path = path;
  }
}

interface BundleRef { entry: number; path: string; reference: string; allowed: string[] }
interface Entry { index: number; fullUrl: string | null; resourceType: string | null; id: string | null; version: string | null }

/** Python's type(value).__name__ for a decoded JSON value. */
function pyType(value: Json): string {
  if (typeof value === "string") return "str";
  if (typeof value === "boolean") return "bool";
  if (value === null) return "NoneType";
  if (value instanceof JsonNumber) return value.isInteger ? "int" : "Decimal";
  return Array.isArray(value) ? "list" : "dict";
}

/** str(Decimal(literal)) / str(int(literal)): how Python prints a JSON number. */
export function pyNumber(literal: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!m) return literal;
  const [, sign, whole = "", fraction, exponent] = m;
  if (fraction === undefined && exponent === undefined) return String(BigInt(sign + whole));
  const digits = (whole + (fraction ?? "")).replace(/^0+(?=\d)/, "");
  const exp = Number(exponent ?? 0) - (fraction?.length ?? 0);
  const adjusted = exp + digits.length - 1;
  let text: string;
  if (exp <= 0 && adjusted >= -6) {
    if (exp === 0) text = digits;
    else {
      const padded = digits.length <= -exp ? "0".repeat(-exp - digits.length + 1) + digits : digits;
      text = `${padded.slice(0, padded.length + exp)}.${padded.slice(padded.length + exp)}`;
    }
  } else {
    text = digits[0] + (digits.length > 1 ? `.${digits.slice(1)}` : "") + `E${adjusted >= 0 ? "+" : ""}${adjusted}`;
  }
  return sign + text;
}

function pyShown(value: Json | undefined): string {
  if (value === undefined || value === null) return "None";
  if (typeof value === "string") return pyRepr(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value instanceof JsonNumber) return value.isInteger ? pyNumber(value.text) : `Decimal('${pyNumber(value.text)}')`;
  if (Array.isArray(value)) return `[${value.map((v) => pyShown(v)).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${pyRepr(k)}: ${pyShown(v)}`).join(", ")}}`;
}

function jsonShown(value: Json): string {
  if (typeof value === "string") {
    const shown = [...pyRepr(value)];
    return `the string ${shown.slice(0, 40).join("")}${shown.length > 40 ? "..." : ""}`;
  }
  if (typeof value === "boolean") return `the boolean ${value}`;
  if (value instanceof JsonNumber) return `the number ${pyNumber(value.text)}`;
  return Array.isArray(value) ? "an array" : "an object";
}

function list(values: readonly string[]): string {
  return values.join(", ");
}

function pyList(values: readonly string[]): string {
  return `[${values.map((v) => pyRepr(v)).join(", ")}]`;
}

function isEmpty(value: Json): boolean {
  return Array.isArray(value) ? value.length === 0 : isObject(value) && Object.keys(value).length === 0;
}

function str(value: Json | undefined): string | null {
  return typeof value === "string" ? value : null;
}

export class Validator {
  readonly rules: Rules;
  private readonly resourceSet: Set<string>;

  constructor(rules: Rules) {
    this.rules = rules;
    this.resourceSet = new Set(rules.resources);
  }

  resourceClass(type: Json | undefined): string | null {
    return typeof type === "string" && this.resourceSet.has(type) ? type : null;
  }

  private cls(name: string): ClassRules {
    const found = this.rules.classes[name];
    if (!found) throw new Error(`no rules for FHIR class ${name}`);
    return found;
  }

  // --- pass 2: Kizuna's walk (validate.py _walk_*) -------------------------------------------

  private walkResource(cls: string, obj: JsonObject, path: string, walk: Walk, contained = false): void {
    if (contained) {
      this.walkElement(cls, obj, path, walk);
      return;
    }
    const outer = walk.localRefs;
    walk.localRefs = [];
    this.walkElement(cls, obj, path, walk);
    const containedIds = new Set<Json | undefined>();
    const containedList = obj.contained;
    if (Array.isArray(containedList)) for (const c of containedList) if (isObject(c)) containedIds.add(c.id);
    for (const [refPath, ref] of walk.localRefs) {
      if (ref !== "#" && !containedIds.has(ref.slice(1))) walk.add(refPath, `${pyRepr(ref)} names no contained resource of this resource`);
    }
    walk.localRefs = outer;
    if (cls === "Bundle") this.walkBundle(obj, path, walk);
  }

  private walkElement(cls: string, obj: JsonObject, path: string, walk: Walk): void {
    walk.depth += 1;
    if (walk.depth > this.rules.limits.elementDepth) throw new TooDeep(path);
    try {
      this.walkMembers(cls, obj, path, walk);
    } finally {
      walk.depth -= 1;
    }
  }

  private walkMembers(cls: string, obj: JsonObject, path: string, walk: Walk): void {
    const index = this.cls(cls).e;
    for (const key of Object.keys(obj)) {
      const value = obj[key] as Json;
      const info = Object.prototype.hasOwnProperty.call(index, key) ? index[key] : undefined;
      if (info === undefined) continue;
      if (value === null) walk.add(`${path}.${key}`, "null is not allowed in FHIR JSON (leave the element out)");
      else if (isEmpty(value)) walk.add(`${path}.${key}`, "empty arrays and objects are not allowed in FHIR JSON (leave the element out)");
      else if (cls === "Bundle" && key === "entry") continue;
      else if (info[LIST] && Array.isArray(value)) {
        value.forEach((item, i) => {
          if (item === null) {
            const partner = key.startsWith("_") ? key.slice(1) : `_${key}`;
            if (!(partner in obj)) walk.add(`${path}.${key}[${i}]`, "null is not allowed in FHIR JSON");
            return;
          }
          this.check(key, info, item, `${path}.${key}[${i}]`, walk);
        });
      } else this.check(key, info, value, `${path}.${key}`, walk);
    }
  }

  private check(key: string, info: Member, value: Json, path: string, walk: Walk): void {
    const kind = info[K];
    if (kind === "element") {
      if (!isObject(value) || info[TARGET] === null) return;
      const coded = info[CODING];
      if (coded) {
        const problem = this.codingProblem(value, coded[1], this.rules.codeSets[coded[2]] ?? []);
        if (problem) walk.add(path, `${problem} (required value set ${coded[0]})`);
      }
      if (info[TARGET] === "Reference") this.noteReference(value, path, info, walk);
      this.walkElement(info[TARGET], value, path, walk);
    } else if (kind === "code") {
      const allowed = info[CODES] === null ? null : this.rules.codeSets[info[CODES]];
      if (allowed && allowed.length && typeof value === "string" && !allowed.includes(value)) {
        walk.add(path, `${pyRepr(value)} is not in the required value set (${list(allowed)})`);
      }
    } else if (kind === "date" || kind === "dateTime" || kind === "instant" || kind === "time") {
      if (typeof value !== "string") walk.add(path, `a FHIR ${kind} is a JSON string, got ${pyType(value)}`);
      else {
        const problem = temporalProblem(kind, value);
        if (problem) walk.add(path, problem);
      }
    } else if (kind === "resource") {
      if (isObject(value)) this.walkAnyResource(value, path, walk, key === "contained");
    } else if (kind === "id") {
      const length = typeof value === "string" ? [...value].length : 0;
      if (length > this.rules.limits.idLength) walk.add(path, `an id has at most 64 characters, this one has ${length}`);
    } else if (kind === "boolean") {
      if (typeof value !== "boolean") walk.add(path, `a FHIR boolean is JSON true or false, got ${jsonShown(value)}`);
    } else if (kind === "integer") {
      if (!(value instanceof JsonNumber && value.isInteger)) walk.add(path, `a FHIR integer is a JSON number without a fraction, got ${jsonShown(value)}`);
    } else if (kind === "decimal") {
      if (!(value instanceof JsonNumber)) walk.add(path, `a FHIR decimal is a JSON number, got ${jsonShown(value)}`);
    }
  }

  private walkAnyResource(obj: JsonObject, path: string, walk: Walk, contained: boolean): void {
    const type = obj.resourceType;
    const cls = this.resourceClass(type);
    if (cls === null) {
      walk.unknownTypes = true;
      const shown = type === undefined || type === null ? "missing" : `${pyShown(type)} is not a FHIR R4`;
      walk.add(`${path}.resourceType`, `${shown} resource type`);
      return;
    }
    this.walkResource(cls, obj, path, walk, contained);
  }

  private codingProblem(concept: JsonObject, system: string, codes: string[]): string | null {
    const codings = Array.isArray(concept.coding) ? concept.coding.filter(isObject) : [];
    const ours = codings.filter((c) => c.system === system);
    if (!ours.length) return `needs a coding from ${system}`;
    const bad = ours.map((c) => c.code).filter((code) => !(typeof code === "string" && codes.includes(code)));
    if (bad.length) return `${pyShown(bad[0])} is not one of ${list(codes)}`;
    return null;
  }

  private noteReference(value: JsonObject, path: string, info: Member, walk: Walk): void {
    const ref = value.reference;
    if (typeof ref !== "string" || !ref) return;
    if (ref.startsWith("#")) {
      walk.localRefs?.push([`${path}.reference`, ref]);
      return;
    }
    walk.bundleRefs?.push({ entry: walk.entry, path: `${path}.reference`, reference: ref, allowed: info[REFS] ?? [] });
  }

  private walkBundle(bundle: JsonObject, path: string, walk: Walk): void {
    const entriesJson = bundle.entry;
    if (!Array.isArray(entriesJson)) return;
    const outerRefs = walk.bundleRefs, outerEntry = walk.entry;
    walk.bundleRefs = [];
    const entries: Entry[] = [];
    const entryCls = this.cls("Bundle").e.entry?.[TARGET] ?? "BundleEntry";
    entriesJson.forEach((entry, i) => {
      if (!isObject(entry)) return;
      walk.entry = i;
      this.walkElement(entryCls, entry, `${path}.entry[${i}]`, walk);
      const resource = isObject(entry.resource) ? entry.resource : {};
      const meta = isObject(resource.meta) ? resource.meta : null;
      entries.push({
        index: i,
        fullUrl: str(entry.fullUrl),
        resourceType: str(resource.resourceType),
        id: str(resource.id),
        version: meta ? str(meta.versionId) : null,
      });
    });
    const refs = walk.bundleRefs;
    walk.bundleRefs = outerRefs;
    walk.entry = outerEntry;
    if (bundle.type !== "history") {
      const seen = new Map<string, number>();
      for (const entry of entries) {
        if (entry.fullUrl === null) continue;
        const key = JSON.stringify([entry.fullUrl, entry.version]);
        const first = seen.get(key);
        if (first !== undefined) {
          walk.add(`${path}.entry[${entry.index}].fullUrl`, `${pyRepr(entry.fullUrl)} also names entry[${first}] with the same version (bdl-7: fullUrl must be unique unless meta.versionId differs)`);
        } else seen.set(key, entry.index);
      }
    }
    const resolver = new Resolver(entries, walk.selfContained);
    for (const ref of refs) {
      const problem = resolver.problem(ref);
      if (problem) walk.add(ref.path, problem);
    }
  }

  // --- pass 1: structure (what fhir.resources checks) ----------------------------------------

  /** Validate an object of class `cls`; returns whether it (or anything in it) failed. Its
   * after-checks (required primitives, choice elements) run only when nothing inside failed,
   * as pydantic's model validators do. */
  private structObject(cls: string, obj: JsonObject, path: string, out: Issue[], opts: { resource: boolean; split: boolean }): boolean {
    const rules = this.cls(cls);
    // fhir_core's before-validator: a null inside a list of complex types stops this object.
    const nulls: Issue[] = [];
    for (const [alias, member] of Object.entries(rules.e)) {
      if (!member[LIST] || member[PRIM] !== null || alias.startsWith("_")) continue;
      const value = obj[alias];
      if (Array.isArray(value) && value.some((v) => v === null)) nulls.push([`${path}.${alias}`, `None is not allowed as an element of ${alias}`]);
    }
    if (nulls.length) {
      out.push(...nulls);
      return true;
    }
    let failed = false;
    for (const key of Object.keys(obj)) {
      const value = obj[key] as Json;
      if ((key === "resourceType" && opts.resource) || key === "fhir_comments") continue;
      const member = Object.prototype.hasOwnProperty.call(rules.e, key) ? rules.e[key] : undefined;
      const where = `${path}.${key}`;
      if (member === undefined) {
        out.push([where, "not an element of this type in FHIR R4"]);
        failed = true;
        continue;
      }
      if (value === null) {
        if (member[REQ] === 1) failed = true; // the walk names it
        continue;
      }
      if (member[LIST]) {
        if (!Array.isArray(value)) {
          out.push([where, "Input should be a valid list"]);
          failed = true;
          continue;
        }
        value.forEach((item, i) => {
          if (item === null) return;
          if (cls === "Bundle" && key === "entry" && opts.split && isObject(item)) {
            if (this.structEntry(item, `${where}[${i}]`, out)) failed = true;
          } else if (this.structValue(member, item, `${where}[${i}]`, out)) failed = true;
        });
      } else if (this.structValue(member, value, where, out)) failed = true;
    }
    for (const [alias, member] of Object.entries(rules.e)) {
      if (member[REQ] === 1 && obj[alias] === undefined) {
        out.push([`${path}.${alias}`, "required element is missing"]);
        failed = true;
      }
    }
    if (failed) return true;
    let missing = false;
    for (const [alias, ext] of Object.entries(rules.req)) {
      const value = obj[alias];
      if (value !== undefined && value !== null) continue;
      const extension = ext === null ? undefined : obj[ext];
      const stands = isObject(extension) && Array.isArray(extension.extension) && extension.extension.length > 0;
      if (!stands) {
        out.push([`${path}.${alias}`, "required element is missing"]);
        missing = true;
      }
    }
    if (missing) return true;
    for (const [, required, fields] of rules.oneOf ?? []) {
      const present = fields.filter((f) => obj[f] !== undefined && obj[f] !== null).length;
      if (present > 1) {
        out.push([path, `Value error, Any of one field value is expected from this list ${pyList(fields)}, but got multiple!`]);
        return true;
      }
      if (required && present === 0) {
        out.push([path, `Value error, Expect any of field value from this list ${pyList(fields)}.`]);
        return true;
      }
    }
    return false;
  }

  /** A Bundle entry whose resource is validated on its own (validate.py _structure_pass):
   * the resource's problems are reported but do not stop the Bundle's own checks. */
  private structEntry(entry: JsonObject, path: string, out: Issue[]): boolean {
    const resource = entry.resource;
    const cls = isObject(resource) ? this.resourceClass(resource.resourceType) : null;
    if (cls === null || !isObject(resource)) return this.structObject("BundleEntry", entry, path, out, { resource: false, split: false });
    const { resource: _, ...skeleton } = entry;
    this.structRoot(cls, resource, `${path}.resource`, out);
    return this.structObject("BundleEntry", skeleton as JsonObject, path, out, { resource: false, split: false });
  }

  private structRoot(cls: string, obj: JsonObject, path: string, out: Issue[]): void {
    this.structObject(cls, obj, path, out, { resource: true, split: cls === "Bundle" });
  }

  private structValue(member: Member, value: Json, path: string, out: Issue[]): boolean {
    const kind = member[K];
    if (kind === "element") {
      const target = member[TARGET] as string;
      if (Array.isArray(value)) {
        out.push([path, `Value is expected from the instance of ${target}, but got type <class 'list'>`]);
        return true;
      }
      if (!isObject(value)) {
        out.push([path, `Input should be an object (${target})`]);
        return true;
      }
      return this.structObject(target, value, path, out, { resource: false, split: false });
    }
    if (kind === "resource") {
      if (!isObject(value)) {
        out.push([path, "Input should be a resource (a JSON object with a resourceType)"]);
        return true;
      }
      const type = value.resourceType;
      // Without a resourceType fhir.resources checks the object as the base Resource; an
      // unknown one (or one that is not a string) is the walk's to report (Python checks the
      // rest around a placeholder).
      if (type === undefined) return this.structObject("Resource", value, path, out, { resource: true, split: false });
      const cls = this.resourceClass(type);
      return cls === null ? false : this.structObject(cls, value, path, out, { resource: true, split: false });
    }
    const primitive = member[PRIM] === null ? undefined : this.rules.primitives[member[PRIM]];
    if (kind === "date" || kind === "dateTime" || kind === "instant" || kind === "time") {
      return typeof value !== "string" || temporalProblem(kind, value) !== null;
    }
    if (kind === "integer") {
      if (!(value instanceof JsonNumber && value.isInteger)) return true;
      const n = BigInt(value.text);
      if (primitive?.ge !== undefined && n < BigInt(primitive.ge)) {
        out.push([path, `Input should be greater than or equal to ${primitive.ge} (got ${pyNumber(value.text)})`]);
        return true;
      }
      if (primitive?.le !== undefined && n > BigInt(primitive.le)) {
        out.push([path, `Input should be less than or equal to ${primitive.le} (got ${pyNumber(value.text)})`]);
        return true;
      }
      return false;
    }
    if (kind === "boolean") return typeof value !== "boolean";
    if (kind === "decimal") return !(value instanceof JsonNumber);
    if (primitive === undefined) return false;
    if (typeof value !== "string") {
      out.push([path, `Input should be a valid string (got ${pyShown(value)})`]);
      return true;
    }
    const length = [...value].length;
    if (primitive.minLength !== undefined && length < primitive.minLength) {
      out.push([path, `String should have at least ${primitive.minLength} character`]);
      return true;
    }
    if (primitive.maxLength !== undefined && length > primitive.maxLength) {
      out.push([path, `String should have at most ${primitive.maxLength} characters`]);
      return true;
    }
    if (primitive.pattern !== undefined && !patternOf(primitive.pattern).test(value)) {
      out.push([path, `String should match pattern '${primitive.pattern}' (got ${pyRepr(value)})`]);
      return true;
    }
    return false;
  }

  // --- public --------------------------------------------------------------------------------

  /** Every problem of a decoded resource as (path, reason), sorted as Python sorts them. */
  findIssues(obj: JsonObject, selfContained = false): Issue[] {
    const cls = this.resourceClass(obj.resourceType);
    if (cls === null) {
      const type = obj.resourceType;
      const shown = type === undefined || type === null ? "missing" : `${pyShown(type)} is not a FHIR R4`;
      return [["resourceType", `${shown} resource type`]];
    }
    const walk = new Walk(selfContained);
    const structural: Issue[] = [];
    try {
      this.walkResource(cls, obj, cls, walk);
      this.structRoot(cls, obj, cls, structural);
    } catch (error) {
      if (error instanceof TooDeep) return [[error.path, `nested deeper than ${this.rules.limits.elementDepth} elements`]];
      throw error;
    }
    const ours = new Set(walk.issues.map(([p]) => p));
    const issues = [...walk.issues, ...structural.filter(([p]) => !ours.has(p))];
    return sortIssues(issues);
  }

  /** Decode and validate (jsonio.load_json + find_issues); throws FhirValidationError. */
  validate(data: Uint8Array | string | JsonObject, selfContained = false): JsonObject {
    const obj = data instanceof Uint8Array || typeof data === "string" ? loadJson(data, this.rules.limits.jsonDepth) : data;
    const issues = this.findIssues(obj, selfContained);
    if (issues.length) throw new FhirValidationError(issues);
    return obj;
  }
}

class Walk {
  issues: Issue[] = [];
  unknownTypes = false;
  localRefs: [string, string][] | null = null;
  bundleRefs: BundleRef[] | null = null;
  entry = -1;
  depth = 0;
  readonly selfContained: boolean;
  constructor(selfContained: boolean) {
    this.selfContained = selfContained;
  }
  add(path: string, reason: string): void {
    this.issues.push([path, reason]);
  }
}

class Resolver {
  private readonly byIndex = new Map<number, Entry>();
  private readonly byUrl = new Map<string, Entry[]>();
  private readonly byTypeId = new Map<string, Entry[]>();
  private readonly bases = new Set<string>();
  private readonly selfContained: boolean;

  constructor(entries: Entry[], selfContained: boolean) {
    this.selfContained = selfContained;
    for (const entry of entries) {
      this.byIndex.set(entry.index, entry);
      if (entry.fullUrl !== null) {
        push(this.byUrl, entry.fullUrl, entry);
        const restful = RESTFUL_URL.exec(entry.fullUrl);
        if (restful) this.bases.add(restful[1] as string);
      }
      if (entry.resourceType && entry.id) push(this.byTypeId, `${entry.resourceType}/${entry.id}`, entry);
    }
  }

  problem(ref: BundleRef): string | null {
    const text = ref.reference;
    let version: string | undefined;
    let targets: Entry[] | undefined;
    let absolute: RegExpExecArray | null = null;
    let relative: RegExpExecArray | null = null;
    if (text.startsWith("urn:uuid:") || text.startsWith("urn:oid:")) {
      targets = this.byUrl.get(text);
      if (targets === undefined) return `${pyRepr(text)} does not resolve to any entry's fullUrl in this Bundle`;
    } else if ((absolute = RESTFUL_URL.exec(text))) {
      version = absolute[4];
      targets = this.byUrl.get(`${absolute[1]}${absolute[2]}/${absolute[3]}`);
      if (targets === undefined) {
        if (this.selfContained && this.bases.has(absolute[1] as string)) return `${pyRepr(text)} does not resolve to an entry in this Bundle`;
        return null;
      }
    } else if ((relative = RELATIVE_REF.exec(text))) {
      version = relative[3];
      const typeId = `${relative[1]}/${relative[2]}`;
      const citing = this.byIndex.get(ref.entry);
      const base = citing ? RESTFUL_URL.exec(citing.fullUrl ?? "") : null;
      targets = base ? this.byUrl.get(`${base[1]}${typeId}`) : this.byTypeId.get(typeId);
      if (targets === undefined) {
        if (this.selfContained) return `${pyRepr(text)} does not resolve to an entry in this Bundle`;
        return null;
      }
    } else return null;
    if (version !== undefined) {
      const versions = new Set(targets.map((t) => t.version));
      if (!versions.has(version) && !(versions.size === 1 && versions.has(null))) return `${pyRepr(text)}: no entry has version ${pyRepr(version)}`;
    }
    const allowed = ref.allowed;
    const kind = targets[0]?.resourceType ?? null;
    if (allowed.length && !allowed.includes("Resource") && (kind === null || !allowed.includes(kind))) {
      return `${pyRepr(text)} is a ${kind ?? "None"}, but this element may refer to ${list(allowed)}`;
    }
    return null;
  }
}

function push<V>(map: Map<string, V[]>, key: string, value: V): void {
  const found = map.get(key);
  if (found) found.push(value);
  else map.set(key, [value]);
}

function temporalProblem(kind: string, value: string): string | null {
  if (kind === "date") return dateProblem(value);
  if (kind === "dateTime") return datetimeProblem(value);
  if (kind === "instant") return datetimeProblem(value, true);
  return timeProblem(value);
}

const patterns = new Map<string, RegExp>();
function patternOf(source: string): RegExp {
  let found = patterns.get(source);
  if (!found) {
    found = new RegExp(source, "u"); // pydantic searches (not a full match) unless anchored
    patterns.set(source, found);
  }
  return found;
}

/** validate.py _sort_key: by path, indices as numbers, names as text; stable otherwise. */
export function sortIssues(issues: Issue[]): Issue[] {
  const keyed = issues.map((issue) => ({ issue, key: [...issue[0].matchAll(/\[(\d+)\]|([^.[\]]+)/g)].map((m) => (m[1] !== undefined ? [0, Number(m[1])] as const : [1, m[2] as string] as const)) }));
  keyed.sort((a, b) => {
    const n = Math.min(a.key.length, b.key.length);
    for (let i = 0; i < n; i++) {
      const x = a.key[i] as readonly [number, number | string];
      const y = b.key[i] as readonly [number, number | string];
      if (x[0] !== y[0]) return x[0] - y[0];
      if (x[1] !== y[1]) return x[1] < y[1] ? -1 : 1;
    }
    return a.key.length - b.key.length;
  });
  return keyed.map((k) => k.issue);
}
