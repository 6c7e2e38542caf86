// Add records (issue 13, item 4): drop FHIR JSON / Bundles / NDJSON, PDFs, images and DICOM
// files, see what was found — checked in this page against the Python importer's own rules,
// refused resources with the field and why — before anything is uploaded; then "Add N records"
// encrypts and uploads them with progress. The FHIR records go together as ONE batch (issue 12:
// one wallet signature registers all of them, patient/batches.ts); files are streamed one by
// one (one signature each). Manual entry forms below. A failure keeps the list (records
// already added are marked; adding again continues where it stopped, never adding a record
// twice) and everything typed in the forms.
import { useEffect, useRef, useState } from "preact/hooks";
import { bytesToHex0x } from "../../core/bytes.ts";
import type { KizunaError } from "../../core/errors.ts";
import { Importer } from "../../importer/importer.ts";
import { loadRules } from "../../importer/rules.ts";
import { inRecord, type ImportItem, type ImportProgress, type PatientClient } from "../../patient/patient.ts";
import { asKizunaError, Failure } from "./care/common.tsx";
import { ManualEntry } from "./add/ManualEntry.tsx";
import { countByType, isRefused, scanFiles, type Found, type Upload } from "./add/scan.ts";
import "./add/add.css";
import { countOf } from "../../ui/format.ts";

type Progress = { done: number; total: number; file?: { name: string; sent: number; size: number }; batch?: ImportProgress };

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1 << 20)).toFixed(1)} MB`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

const SHOWN_ISSUES = 5;
const MAX_ISSUES = 500;

/** A refused file's problems: the first few, the rest one click away. */
function Issues(props: { issues: Array<[string, string]> }) {
  const item = ([field, reason]: [string, string], k: number) => (
    <li key={k}>{field ? <><code>{field}</code>: </> : null}{reason}</li>
  );
  const { issues } = props;
  return (
    <div data-testid="issues">
      <ul class="issues">{issues.slice(0, SHOWN_ISSUES).map(item)}</ul>
      {issues.length > SHOWN_ISSUES ? (
        <details class="issues-more">
          <summary>Show {issues.length - SHOWN_ISSUES} more {issues.length - SHOWN_ISSUES === 1 ? "problem" : "problems"}</summary>
          <ul class="issues">{issues.slice(SHOWN_ISSUES, MAX_ISSUES).map((issue, k) => item(issue, k + SHOWN_ISSUES))}</ul>
          {issues.length > MAX_ISSUES ? <p class="hint">… and {issues.length - MAX_ISSUES} more.</p> : null}
        </details>
      ) : null}
    </div>
  );
}

/** A batch import's progress: encrypted, uploaded, then the one signature and the registration. */
function BatchProgress(props: { progress: ImportProgress }) {
  const { phase, total, encrypted, uploaded } = props.progress;
  return (
    <>
      <label for="encrypt-progress">Encrypted in this page: {encrypted} of {plural(total, "record")}</label>
      <progress id="encrypt-progress" max={total} value={encrypted} />
      <label for="upload-progress">Uploaded (encrypted): {uploaded} of {plural(total, "record")}</label>
      <progress id="upload-progress" max={total} value={uploaded} />
      {phase === "signing" ? (
        <p class="batch-step" data-testid="batch-step">Check your wallet: one signature registers all {plural(total, "record")} at once.</p>
      ) : phase === "registering" ? (
        <p class="batch-step" data-testid="batch-step">Registering {plural(total, "record")} on the blockchain in one transaction…</p>
      ) : null}
    </>
  );
}

export function AddRecords(props: { client: PatientClient; onAdded: () => void }) {
  const { client } = props;
  const [importer, setImporter] = useState<Importer | null>(null);
  const [rulesError, setRulesError] = useState<KizunaError | null>(null);
  const [found, setFound] = useState<Found[]>([]);
  const [scanning, setScanning] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [error, setError] = useState<KizunaError | null>(null);
  const [addedCount, setAddedCount] = useState<{ added: number; already: number } | null>(null);
  // Files dropped again while already in the list (the same bytes): named, not listed twice.
  const [listedAgain, setListedAgain] = useState<string[]>([]);
  // Uploads already done (by object identity): a retry after a failure adds only the rest.
  const done = useRef(new WeakSet<Upload>());
  // Each FHIR record's place in a batch import (its record id, what was staged): kept across
  // a retry, so what the service already holds is not sent again.
  const importItems = useRef(new WeakMap<Upload, ImportItem>());
  const input = useRef<HTMLInputElement>(null);

  // Files dropped or chosen before the checks' rules are loaded wait here: none is lost.
  const [waiting, setWaiting] = useState<File[]>([]);

  useEffect(() => {
    loadRules().then((rules) => setImporter(new Importer(rules)), (e: unknown) => setRulesError(asKizunaError(e)));
  }, []);

  useEffect(() => {
    if (!importer || !waiting.length) return;
    const files = waiting;
    setWaiting([]);
    void take(files);
  }, [importer, waiting]);

  async function take(files: File[]) {
    if (!files.length) return;
    if (!importer) {
      setWaiting((before) => [...before, ...files]);
      return;
    }
    setError(null);
    setAddedCount(null);
    try {
      const scanned = await scanFiles(importer, files, await client.recordIds(), (name) => setScanning(name));
      // The same Bundle (or NDJSON set) twice names the same records: it is listed once.
      const again: string[] = [];
      setFound((before) => {
        const listed = new Set(before.flatMap((f) => (f.digest ? [f.digest] : [])));
        const fresh = scanned.filter((f) => {
          if (!f.digest) return true;
          if (listed.has(f.digest)) {
            again.push(f.name);
            return false;
          }
          listed.add(f.digest);
          return true;
        });
        return [...before, ...fresh];
      });
      setListedAgain(again);
    } catch (e) {
      setError(asKizunaError(e));
    } finally {
      setScanning(null);
    }
  }

  const accepted = found.filter((f) => !isRefused(f));
  const pending = accepted.flatMap((f) => f.uploads).filter((u) => !done.current.has(u));
  const pendingRecords = pending.filter((u) => u.kind === "record").length;
  const refusedFiles = found.filter(isRefused);
  const counts = countByType(accepted);

  async function upload() {
    if (!pending.length || progress) return;
    setError(null);
    const total = pending.length;
    let finished = 0;
    let already = 0;
    setProgress({ done: 0, total });
    try {
      // Files are streamed one by one (each its own registration); then every FHIR record
      // together: one batch, one wallet signature (a lone record goes on its own).
      const files = pending.filter((u): u is Extract<Upload, { kind: "file" }> => u.kind === "file");
      const records = pending.filter((u): u is Extract<Upload, { kind: "record" }> => u.kind === "record");
      // A file's id is its bytes' (core/recordIds.ts): one added before is in the record already.
      const registered = files.length ? await client.registeredIds() : new Set<string>();
      for (const item of files) {
        if (registered.has(bytesToHex0x(item.recordId).toLowerCase())) {
          done.current.add(item);
          finished += 1;
          already += 1;
          continue;
        }
        setProgress({ done: finished, total, file: { name: item.file.name, sent: 0, size: item.file.size } });
        await client.addFile(item.file, { label: item.label, contentType: item.contentType, recordId: item.recordId },
          (sent, all) => setProgress({ done: finished, total, file: { name: item.file.name, sent, size: all } }));
        done.current.add(item);
        finished += 1;
      }
      // A resource of a file goes in a batch with its deterministic id (imported again, it is
      // found in the record and skipped); a lone resource without a source is added alone.
      if (records.length === 1 && !records[0]!.source) {
        const { record } = records[0]!;
        setProgress({ done: finished, total });
        await client.addRecord(record.content, { label: record.scopeLabel, contentType: record.contentType });
        done.current.add(records[0]!);
        finished += 1;
      } else if (records.length) {
        const ids = await client.recordIds();
        const items: ImportItem[] = [];
        for (const u of records) {
          let item = importItems.current.get(u);
          if (!item) {
            item = client.importItem({
              content: u.record.content, label: u.record.scopeLabel, contentType: u.record.contentType,
              ...(u.source ? { recordId: await ids.of(u.source.digest, u.source.index) } : {}),
            });
            importItems.current.set(u, item);
          }
          items.push(item);
        }
        const base = finished;
        // Shown at most every 100 ms (an import of thousands reports each record), and at
        // each change of step.
        let shownAt = 0;
        let shownPhase = "";
        try {
          await client.importRecords(items, (batch) => {
            const now = performance.now();
            if (batch.phase === shownPhase && now - shownAt < 100 && batch.uploaded < batch.total) return;
            shownAt = now;
            shownPhase = batch.phase;
            setProgress({ done: base + batch.registered, total, batch });
          });
        } finally {
          // Marked from the service's answers only: after a failure, adding again sends the rest.
          records.forEach((u, k) => { if (inRecord(items[k]!)) done.current.add(u); });
        }
        finished += records.length;
        already += items.filter((item) => item.existing).length;
      }
      setAddedCount({ added: total - already, already });
      setFound([]);
      done.current = new WeakSet();
      props.onAdded();
    } catch (e) {
      setError(asKizunaError(e));
      setFound((f) => [...f]); // re-render: the list shows what was added before the failure
    } finally {
      setProgress(null);
    }
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    void take([...(event.dataTransfer?.files ?? [])]);
  }

  const busy = scanning !== null || progress !== null;
  return (
    <section class="add-page" aria-labelledby="add-title" data-testid="add-page">
      <h1 id="add-title">Add records</h1>
      <p class="add-intro">
        Files are checked and encrypted in this page; the service only ever receives encrypted data.
        You see what was found before anything is uploaded.
      </p>
      <Failure error={rulesError} />

      <section class="add-section" aria-labelledby="files-title">
        <h2 id="files-title">Add files</h2>
        <div class={`dropzone${dragging ? " dropzone-over" : ""}`} data-testid="dropzone"
             onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
             onDragLeave={() => setDragging(false)} onDrop={onDrop}>
          <p class="dropzone-main">Drop files here</p>
          <p class="dropzone-kinds">FHIR JSON, Bundles, NDJSON, PDF, PNG or JPEG images, DICOM (.dcm)</p>
          <input ref={input} id="add-files" class="sr-only" type="file" multiple tabIndex={-1} aria-label="Files to add"
                 accept=".json,.ndjson,.jsonl,.pdf,.png,.jpg,.jpeg,.gif,.tif,.tiff,.webp,.dcm,application/json,application/fhir+json,application/pdf,image/*,application/dicom"
                 onChange={(e) => { const el = e.target as HTMLInputElement; void take([...(el.files ?? [])]); el.value = ""; }} />
          <button type="button" class="button button-primary" onClick={() => input.current?.click()} disabled={!importer || busy}>
            Choose files…
          </button>
          {!importer && !rulesError ? (
            <p class="hint" role="status">
              Preparing the checks…{waiting.length ? ` ${countOf(waiting.length, "file")} will be checked in a moment.` : ""}
            </p>
          ) : null}
          {scanning ? <p class="hint" role="status">Checking {scanning}…</p> : null}
        </div>

        {found.length ? (
          <div class="found" data-testid="found">
            <h3>What was found</h3>
            {accepted.length ? (
              <>
                <p data-testid="found-summary"><strong>{plural(accepted.flatMap((f) => f.uploads).length, "record")}</strong> ready to add:</p>
                <ul class="found-counts" aria-label="Records by type">
                  {counts.map(([type, n]) => <li key={type}><strong>{n}</strong> {type}</li>)}
                </ul>
              </>
            ) : <p>No records can be added from these files.</p>}
            <ul class="found-list">
              {found.map((f, i) => {
                const left = f.uploads.filter((u) => !done.current.has(u)).length;
                return (
                  <li key={`${f.name}-${i}`} class={isRefused(f) ? "found-bad" : "found-ok"} data-testid="found-file">
                    <div class="found-head">
                      <span class="found-name">{f.name}</span>
                      <span class="found-what">{f.what} · {size(f.size)}</span>
                      <span class="found-status">
                        {isRefused(f) ? `Refused (${plural(f.issues.length, "problem")})`
                          : left < f.uploads.length ? `${f.uploads.length - left} of ${plural(f.uploads.length, "record")} added`
                          : plural(f.uploads.length, "record")}
                      </span>
                      {!busy ? (
                        <button type="button" class="button button-quiet found-remove" onClick={() => setFound((all) => all.filter((x) => x !== f))}
                                aria-label={`Remove ${f.name} from the list`}>Remove</button>
                      ) : null}
                    </div>
                    {isRefused(f) ? <Issues issues={f.issues} /> : null}
                  </li>
                );
              })}
            </ul>
            {refusedFiles.length && accepted.length ? <p class="hint">Refused files are left out; fix them and add them again.</p> : null}
          </div>
        ) : null}

        <Failure error={error} onDismiss={() => setError(null)} {...(pending.length ? { retry: () => void upload() } : {})} />
        {error && accepted.length && pending.length < accepted.flatMap((f) => f.uploads).length ? (
          <p class="hint" role="status" data-testid="partial">
            {plural(accepted.flatMap((f) => f.uploads).length - pending.length, "record")} were added before this problem.
            Nothing is added twice: adding again sends only the remaining {plural(pending.length, "record")}.
          </p>
        ) : null}
        {error && pending.some((u) => importItems.current.get(u)?.staged) ? (
          <p class="hint" role="status" data-testid="resumable">
            The records encrypted and uploaded before this problem are kept for a day: adding again continues where it stopped.
          </p>
        ) : null}

        {progress ? (
          <div class="progress" role="status" aria-live="polite" data-testid="progress">
            {progress.batch ? <BatchProgress progress={progress.batch} /> : (
              <>
                <label for="add-progress">Adding record {Math.min(progress.done + 1, progress.total)} of {progress.total}</label>
                <progress id="add-progress" max={progress.total} value={progress.done} />
              </>
            )}
            {progress.file ? (
              <>
                <label for="file-progress">Encrypting and uploading {progress.file.name}: {size(progress.file.sent)} of {size(progress.file.size)}</label>
                <progress id="file-progress" max={progress.file.size || 1} value={progress.file.sent} />
              </>
            ) : null}
          </div>
        ) : null}
        {addedCount !== null ? (
          <p class="add-done" role="status" data-testid="added">
            {addedCount.added === 0 ? `${addedCount.already === 1 ? "This record is" : `All ${addedCount.already} records are`} already in your record: nothing was added.`
              : `${plural(addedCount.added, "record")} added to your record.${addedCount.already ? ` ${plural(addedCount.already, "record")} ${addedCount.already === 1 ? "was" : "were"} already in your record.` : ""}`}
          </p>
        ) : null}
        {listedAgain.length ? (
          <p class="hint" role="status" data-testid="listed-again">
            {listedAgain.join(", ")} {listedAgain.length === 1 ? "is" : "are"} already in the list: the same file adds its records once.
          </p>
        ) : null}

        {pending.length ? (
          <div class="add-actions">
            <button type="button" class="button button-primary button-large" onClick={() => void upload()} disabled={busy} data-testid="add-button">
              {pending.length < accepted.flatMap((f) => f.uploads).length ? `Add the remaining ${plural(pending.length, "record")}` : `Add ${plural(pending.length, "record")}`}
            </button>
            {!busy ? <button type="button" class="button" onClick={() => setFound([])}>Clear the list</button> : null}
            {pendingRecords > 1 ? (
              <p class="hint add-sign-once" data-testid="sign-once">
                The {plural(pendingRecords, "FHIR record")} are registered together: your wallet asks you to sign once for all of them{pending.length > pendingRecords ? ", and once for each file" : ""}.
              </p>
            ) : null}
          </div>
        ) : null}
      </section>

      <ManualEntry client={client} importer={importer} onAdded={props.onAdded} />
    </section>
  );
}
