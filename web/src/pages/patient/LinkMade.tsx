// A SMART Health Link just made: the `shlink:/` URI to copy, and its QR code drawn in the page
// (web/src/sharing/qr.ts) for the reader's phone camera. Shown once: the key is in the link only.

import { useEffect, useState } from "preact/hooks";
import { QUIET_ZONE, qrSymbol, type QrSymbol } from "../../sharing/qr.ts";

export function LinkMade(props: { uri: string; id: string }) {
  const { uri, id } = props;
  const [symbol, setSymbol] = useState<QrSymbol | null>(null);
  const [qrError, setQrError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    let live = true;
    setSymbol(null);
    setQrError(null);
    qrSymbol(uri).then((s) => live && setSymbol(s), (e: unknown) => live && setQrError(
      `The QR code could not be drawn (${e instanceof Error ? e.message : String(e)}); the link above works the same.`));
    return () => {
      live = false;
    };
  }, [uri]);
  const side = symbol ? symbol.size + 2 * QUIET_ZONE : 0;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(uri);
      setCopied(true);
    } catch {
      setQrError("This browser did not allow copying: select the link and copy it by hand.");
    }
  };
  return (
    <div class="callout link-made">
      <label for={`${id}-uri`}><strong>Your link</strong> (hand it only to the person it is for)</label>
      <textarea id={`${id}-uri`} class="shl-uri" readOnly rows={3} value={uri} data-testid="shl-uri" />
      <div class="form-actions">
        <button type="button" class="button" onClick={() => void copy()}>{copied ? "Copied" : "Copy the link"}</button>
      </div>
      <p class="hint">Or let them scan this code with a phone camera (it holds the same link, key included).</p>
      {symbol ? (
        <svg class="shl-qr" data-testid="shl-qr" role="img" aria-label="QR code of your link" viewBox={`${-QUIET_ZONE} ${-QUIET_ZONE} ${side} ${side}`}
             width={Math.min(320, side * 4)} height={Math.min(320, side * 4)} shape-rendering="crispEdges">
          <rect x={-QUIET_ZONE} y={-QUIET_ZONE} width={side} height={side} fill="#fff" />
          <path d={symbol.path} fill="#000" />
        </svg>
      ) : qrError ? null : <p role="status">Drawing the QR code…</p>}
      {qrError ? <p class="field-error" role="alert">{qrError}</p> : null}
    </div>
  );
}
