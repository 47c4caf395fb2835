// Browser-side models behind the UI: the event list and the transcript. Pure (no DOM), so node
// can test them; the DOM code in widget.js only renders what these say.

export const CATEGORIES = ["user_speech", "ai_response", "system", "error", "connection"];

export const CATEGORY_LABELS = {
  user_speech: "User speech",
  ai_response: "AI response",
  system: "System",
  error: "Errors",
  connection: "Connection",
};

/**
 * The events the browser keeps for the events panel.
 *
 * The kernel's log keeps everything; the browser keeps the newest `capacity` rows so a long
 * session cannot grow the page without bound. Counts per category cover every row ever received
 * (not only the kept ones), so they match the kernel's stats.
 */
export class EventStore {
  constructor(capacity = 5000) {
    this.capacity = capacity;
    this.rows = [];
    this.counts = Object.fromEntries(CATEGORIES.map((c) => [c, 0]));
    this.total = 0;
    this.dropped = 0;
    this.lastSeq = -1;
  }

  /** Add rows (each with seq, type, category, ...); rows already seen (by seq) are ignored. */
  add(rows) {
    let added = 0;
    for (const row of rows) {
      if (typeof row.seq === "number" && row.seq <= this.lastSeq) continue;
      if (typeof row.seq === "number") this.lastSeq = row.seq;
      this.rows.push(row);
      this.total++;
      added++;
      if (row.category in this.counts) this.counts[row.category]++;
    }
    const excess = this.rows.length - this.capacity;
    if (excess > 0) {
      this.rows.splice(0, excess);
      this.dropped += excess;
    }
    return added;
  }

  /** Rows passing the filter: `categories` a Set of enabled categories, `query` a type substring. */
  filter({ categories, query = "" } = {}) {
    const q = query.trim().toLowerCase();
    return this.rows.filter(
      (row) => (!categories || categories.has(row.category)) && (!q || String(row.type).toLowerCase().includes(q)),
    );
  }
}

/**
 * Which rows of a fixed-height virtual list to put in the DOM.
 *
 * One row may be expanded by `extra` pixels (its JSON detail). Returns {start, end, top, height}:
 * render rows [start, end) with the first at `top` px; `height` is the whole list's height.
 * `overscan` rows are added on both sides so fast scrolling shows no gaps.
 */
export function visibleRange({ scrollTop, viewport, count, rowHeight, expanded = -1, extra = 0, overscan = 6 }) {
  const offsetOf = (i) => i * rowHeight + (expanded >= 0 && i > expanded ? extra : 0);
  const indexAt = (y) => {
    if (expanded >= 0 && y >= offsetOf(expanded + 1)) return Math.floor((y - extra) / rowHeight);
    return Math.floor(y / rowHeight);
  };
  const height = count * rowHeight + (expanded >= 0 && expanded < count ? extra : 0);
  const first = Math.max(0, Math.min(count, indexAt(Math.max(0, scrollTop))));
  const last = Math.max(first, Math.min(count, indexAt(scrollTop + viewport) + 1));
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, last + overscan);
  return { start, end, top: offsetOf(start), height };
}

/** Whether a scroll container is (close enough to) its bottom: then the list follows new rows. */
export function atBottom({ scrollTop, clientHeight, scrollHeight }, slack = 8) {
  return scrollTop + clientHeight >= scrollHeight - slack;
}

/**
 * The transcript as the UI shows it: one entry per conversation item, in first-seen order.
 * Updates from the kernel carry {id, role, text, final, interrupted}; a partial (final=false)
 * is replaced by later partials and by the final, never appended twice.
 */
export class TranscriptStore {
  constructor(capacity = 500) {
    this.capacity = capacity;
    this.entries = new Map();
  }

  apply(updates) {
    for (const u of updates) {
      if (!u || typeof u.id !== "string") continue;
      const prev = this.entries.get(u.id);
      if (prev && prev.final && !u.final && !u.interrupted) continue; // a late partial never overwrites a final
      this.entries.set(u.id, { ...prev, ...u });
    }
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value);
  }

  list() {
    return [...this.entries.values()];
  }
}

/** Median of the finite numbers in `values`, or null. */
export function median(values) {
  const xs = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** "1.23 s" / "845 ms" / "—" for latency figures given in ms. */
export function formatMs(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "\u2013";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}
