// A document's file shown in the page: a record of its own (decrypted on demand through
// openRecord, then shown from a blob: URL, which the page's CSP allows for img and frame), or
// inline base64 data (Synthea's clinical notes). External URLs are shown, never fetched.

import { useEffect, useState } from "preact/hooks";
import type { OpenRecord } from "../../fhir/records.ts";
import { contentTypeText, type AttachmentInfo } from "../../fhir/summarize.ts";

type Shown =
  | { kind: "closed" }
  | { kind: "loading" }
  | { kind: "error"; message: string }
  | { kind: "blob"; url: string; type: string }
  | { kind: "text"; text: string };

function baseType(type: string | null): string {
  return (type ?? "").split(";")[0]!.trim().toLowerCase();
}

function decodeBase64(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function viewable(type: string): "image" | "pdf" | "text" | null {
  if (type.startsWith("image/") && type !== "image/tiff") return "image";
  if (type === "application/pdf") return "pdf";
  if (type.startsWith("text/")) return "text";
  return null;
}

export function AttachmentView(props: { attachment: AttachmentInfo; openRecord: OpenRecord; fallbackType?: string }) {
  const { attachment } = props;
  const [shown, setShown] = useState<Shown>({ kind: "closed" });
  const type = baseType(attachment.contentType ?? props.fallbackType ?? null);
  const how = viewable(type);
  const name = attachment.title ?? contentTypeText(type) ?? "document";

  // The blob: URL lives as long as it is shown.
  useEffect(() => () => { if (shown.kind === "blob") URL.revokeObjectURL(shown.url); }, [shown]);

  if (!attachment.recordId && !attachment.data) {
    return attachment.url
      ? <p class="fhir-note">The file is kept elsewhere: <code>{attachment.url}</code></p>
      : null;
  }

  async function open() {
    setShown({ kind: "loading" });
    try {
      let bytes: Blob | Uint8Array;
      if (attachment.data) {
        bytes = decodeBase64(attachment.data);
      } else {
        bytes = await props.openRecord(attachment.recordId!);
      }
      if (how === "text") {
        const text = bytes instanceof Blob ? await bytes.text() : new TextDecoder().decode(bytes);
        setShown({ kind: "text", text });
      } else {
        const blob = bytes instanceof Blob && bytes.type ? bytes : new Blob([bytes as BlobPart], { type });
        setShown({ kind: "blob", url: URL.createObjectURL(blob), type });
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      setShown({ kind: "error", message });
    }
  }

  const verb = how === "image" ? "Show image" : how === "pdf" ? "Open PDF" : how === "text" ? "Show text" : "Download file";
  return (
    <div class="fhir-attachment">
      {shown.kind === "blob" || shown.kind === "text" ? (
        <button type="button" class="button" onClick={() => setShown({ kind: "closed" })}>
          Hide {how === "text" ? "text" : name}
        </button>
      ) : (
        <button type="button" class="button" onClick={open} disabled={shown.kind === "loading"} aria-busy={shown.kind === "loading"}>
          {shown.kind === "loading" ? "Decrypting…" : `${verb}${how === "text" ? "" : `: ${name}`}`}
        </button>
      )}
      {shown.kind === "error" ? (
        <p class="fhir-error" role="alert">Could not open {name}: {shown.message}</p>
      ) : null}
      {shown.kind === "text" ? <pre class="fhir-text" tabIndex={0}>{shown.text}</pre> : null}
      {shown.kind === "blob" && how === "image" ? <img class="fhir-image" src={shown.url} alt={name} /> : null}
      {shown.kind === "blob" && how === "pdf" ? <iframe class="fhir-pdf" src={shown.url} title={name} /> : null}
      {shown.kind === "blob" && how === null ? (
        <p><a href={shown.url} download={attachment.title ?? "file"}>Save {name}</a> (this browser cannot show {type || "this file"} itself)</p>
      ) : null}
    </div>
  );
}
