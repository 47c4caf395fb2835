// The transcript panel's "Copy" and downloads (see rtvoice_widget/export.py).
//
// Copy is built here, from the transcript the page shows, inside the click's own task: the
// clipboard API wants a user gesture, which a round trip to the kernel would outlive in some
// browsers. Downloads (Markdown, JSON, WAV) are made by the kernel, which holds the recording
// and the full turns table; they arrive as numbered pieces of one buffer each, joined here into
// a Blob and saved through a temporary <a download>.

/** The transcript entries ({role, text, final, interrupted}) as plain text, one line each. */
export function transcriptText(entries) {
  const lines = [];
  for (const e of entries) {
    const text = (e.text || "").trim();
    if (!text) continue;
    const who = e.role === "assistant" ? "AI" : "You";
    lines.push(`${who}: ${text}${e.interrupted ? " [interrupted]" : ""}`);
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}

/**
 * Joins download pieces ({id, name, mime, size, index, count} + bytes) into files. `add`
 * returns {name, mime, parts} once every piece of an id arrived, else null. At most `maxOpen`
 * downloads are assembled at once (the oldest unfinished one is dropped).
 */
export class DownloadAssembler {
  constructor(maxOpen = 4) {
    this.maxOpen = maxOpen;
    this.open = new Map(); // id -> {name, mime, count, parts, received}
  }

  add(msg, bytes) {
    const { id, name, mime, index, count } = msg || {};
    if (typeof id !== "string" || !Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) return null;
    let d = this.open.get(id);
    if (!d) {
      if (this.open.size >= this.maxOpen) this.open.delete(this.open.keys().next().value);
      d = { name: String(name || "download"), mime: String(mime || "application/octet-stream"), count, parts: new Array(count), received: 0 };
      this.open.set(id, d);
    }
    if (d.parts[index] === undefined) d.received++;
    d.parts[index] = bytes;
    if (d.received < d.count) return null;
    this.open.delete(id);
    return { name: d.name, mime: d.mime, parts: d.parts };
  }
}

/** A copy of a kernel buffer (a DataView, maybe at an offset into a larger buffer). */
export function bytesOf(view) {
  if (!view) return new Uint8Array(0);
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

/** Save `parts` as a file called `name` through the browser's download. */
export function saveFile({ name, mime, parts }) {
  const url = URL.createObjectURL(new Blob(parts, { type: mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  // The download has taken the Blob by now; keep the URL a moment for slow browsers.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Copy `text` to the clipboard; resolves true on success. Falls back to execCommand where the
 * async clipboard is missing (non-secure pages). */
export async function copyText(text) {
  try {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (err) {
    // fall through to the old way
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (err) {
    ok = false;
  }
  area.remove();
  return ok;
}
