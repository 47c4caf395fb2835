import { test } from "node:test";
import assert from "node:assert/strict";
import { EventStore, visibleRange, atBottom, TranscriptStore, median, formatMs, CATEGORIES } from "../lib/state.js";

const row = (seq, category = "system", type = "session.updated") => ({ seq, category, type });

test("event store caps rows, keeps counts of everything, ignores replays", () => {
  const store = new EventStore(100);
  for (let i = 0; i < 10000; i += 100) {
    store.add(Array.from({ length: 100 }, (_, k) => row(i + k, CATEGORIES[(i + k) % 5])));
  }
  assert.equal(store.rows.length, 100);
  assert.equal(store.rows[0].seq, 9900);
  assert.equal(store.total, 10000);
  assert.equal(store.dropped, 9900);
  assert.deepEqual(Object.values(store.counts), [2000, 2000, 2000, 2000, 2000]);
  assert.equal(store.add([row(5), row(9999)]), 0);
});

test("event filter by categories and type substring", () => {
  const store = new EventStore();
  store.add([row(1, "error", "error"), row(2, "ai_response", "response.output_audio.delta"), row(3, "ai_response", "response.done")]);
  assert.equal(store.filter({ categories: new Set(["ai_response"]) }).length, 2);
  assert.deepEqual(store.filter({ query: " DONE " }).map((r) => r.seq), [3]);
  assert.equal(store.filter({ categories: new Set() }).length, 0);
});

test("virtual range renders only the visible rows of 10k", () => {
  const r = visibleRange({ scrollTop: 22 * 5000, viewport: 220, count: 10000, rowHeight: 22, overscan: 2 });
  assert.equal(r.start, 4998);
  assert.equal(r.end, 5013);
  assert.equal(r.top, 4998 * 22);
  assert.equal(r.height, 220000);
  const expanded = visibleRange({ scrollTop: 22 * 5000 + 300, viewport: 220, count: 10000, rowHeight: 22, expanded: 10, extra: 300, overscan: 0 });
  assert.equal(expanded.start, 5000);
  assert.equal(expanded.top, 5000 * 22 + 300);
  assert.equal(expanded.height, 220300);
  const empty = visibleRange({ scrollTop: 0, viewport: 200, count: 0, rowHeight: 22 });
  assert.deepEqual([empty.start, empty.end, empty.height], [0, 0, 0]);
});

test("atBottom decides auto-follow", () => {
  assert.equal(atBottom({ scrollTop: 780, clientHeight: 220, scrollHeight: 1000 }), true);
  assert.equal(atBottom({ scrollTop: 500, clientHeight: 220, scrollHeight: 1000 }), false);
});

test("transcript partials are replaced by finals, late partials do not undo a final", () => {
  const t = new TranscriptStore();
  t.apply([{ id: "u1", role: "user", text: "hel", final: false }]);
  t.apply([{ id: "u1", role: "user", text: "hello", final: false }, { id: "a1", role: "assistant", text: "Hi", final: false }]);
  t.apply([{ id: "u1", role: "user", text: "Hello there.", final: true }]);
  t.apply([{ id: "u1", role: "user", text: "Hello th", final: false }]);
  t.apply([{ id: "a1", role: "assistant", text: "Hi the", final: true, interrupted: true }]);
  assert.deepEqual(t.list().map((e) => [e.id, e.text, e.final, !!e.interrupted]), [
    ["u1", "Hello there.", true, false],
    ["a1", "Hi the", true, true],
  ]);
  t.apply([null, { id: 3 }]);
  assert.equal(t.list().length, 2);
});

test("median and formatMs", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([null, NaN]), null);
  assert.equal(formatMs(845.4), "845 ms");
  assert.equal(formatMs(1234), "1.23 s");
  assert.equal(formatMs(null), "\u2013");
});
