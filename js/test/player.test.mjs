import { test } from "node:test";
import assert from "node:assert/strict";
import { PlaybackQueue, PlayedReporter, playedMessage } from "../lib/player.js";

const RATE = 48000;
const ones = (n) => new Float32Array(n).fill(0.5);

function renderAll(q, blocks, size = 128) {
  const out = new Float32Array(size);
  const rendered = [];
  for (let i = 0; i < blocks; i++) {
    q.render(out);
    rendered.push(...out);
  }
  return rendered;
}

test("waits for the prebuffer, then plays everything and counts played ms per item", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 60, fadeMs: 5 });
  q.push("a", ones(480)); // 10 ms: below the prebuffer
  const out = new Float32Array(128);
  assert.equal(q.render(out), 0);
  assert.equal(q.played("a"), 0);
  q.push("a", ones(2400)); // now 60 ms queued
  renderAll(q, 30);
  assert.equal(q.played("a"), 60);
  assert.equal(q.bufferedMs(), 0);
  assert.equal(q.active, false);
});

test("a short last chunk plays after waiting the prebuffer time", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 60 });
  q.push("a", ones(480));
  renderAll(q, 40); // 40 blocks = 106 ms > 60 ms
  assert.equal(q.played("a"), 10);
});

test("each item fades in from silence", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 0, fadeMs: 5 });
  q.push("a", ones(960));
  const samples = renderAll(q, 8);
  assert.equal(samples[0], 0);
  assert.ok(samples[100] > 0 && samples[100] < 0.5);
  assert.equal(samples[300], 0.5);
});

test("flush drops queued audio at once, keeps only a short fade-out, reports played ms", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 0, fadeMs: 5 });
  q.push("a", ones(RATE)); // 1 s
  q.push("b", ones(RATE));
  renderAll(q, 75); // 200 ms of "a"
  assert.equal(q.played("a"), 200);
  const reports = q.flush();
  const a = reports.find((r) => r.itemId === "a");
  assert.equal(a.ms, 205); // 200 played + 5 ms fade-out still to render
  assert.ok(reports.some((r) => r.itemId === "b" && r.ms === 0));
  assert.ok(q.bufferedMs() <= 5);
  const tail = renderAll(q, 10);
  assert.equal(q.played("a"), 205);
  assert.equal(q.played("b"), 0);
  assert.ok(Math.abs(tail[0]) <= 0.5 && tail.slice(240).every((s) => s === 0));
  // Fade-out decreases monotonically.
  for (let i = 1; i < 240; i++) assert.ok(tail[i] <= tail[i - 1] + 1e-9);
});

test("after a flush new audio plays again (no stuck silence)", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 20 });
  q.push("a", ones(9600));
  renderAll(q, 10);
  q.flush();
  renderAll(q, 5);
  q.push("c", ones(4800));
  renderAll(q, 60);
  assert.equal(q.played("c"), 100);
});

test("flush on an empty queue reports nothing and breaks nothing", () => {
  const q = new PlaybackQueue(RATE);
  assert.deepEqual(q.flush(), []);
  assert.equal(q.render(new Float32Array(128)), 0);
});

test("reporter reports changed items about every interval, not every block", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 0 });
  const reporter = new PlayedReporter(RATE, 50); // 2400 samples
  q.push("a", ones(RATE));
  const out = new Float32Array(128);
  const due = [];
  for (let i = 0; i < 375; i++) {
    // 1 s of blocks
    due.push(...reporter.tick(128, q, q.render(out)));
  }
  assert.ok(due.length >= 19 && due.length <= 21, `${due.length} reports`);
  // The moment the queue runs dry the exact end is reported, not one interval later.
  assert.deepEqual(due.at(-1), { itemId: "a", ms: 1000 });
  for (let i = 1; i < due.length; i++) assert.ok(due[i].ms > due[i - 1].ms);
  // Nothing changes -> nothing is reported.
  for (let i = 0; i < 100; i++) assert.deepEqual(reporter.tick(128, q, q.render(out)), []);
});

test("flush reports the item played last even when its queue had run dry", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 0, fadeMs: 5 });
  q.push("a", ones(4800)); // 100 ms, all played: an underrun while more of "a" may come
  renderAll(q, 60);
  assert.equal(q.active, false);
  assert.deepEqual(q.flush(), [{ itemId: "a", ms: 100 }]);
  q.push("b", ones(4800));
  renderAll(q, 10);
  const reports = q.flush();
  assert.deepEqual(reports.map((r) => r.itemId), ["b"]); // "a" is no longer the one playing
});

test("played messages carry the flush flag, the page clock and the output latencies", () => {
  const ctx = { outputLatency: 0.0213, baseLatency: 0.005333 };
  const timing = { arrivedT: 1700000000001, startedT: 1700000000002.5, flushArrivedT: 1700000000100, silentT: 1700000000107, underruns: 2 };
  const msg = playedMessage({ itemId: "a", ms: 912.5 }, { flushed: true, t: 1700000000123.5, ctx, timing });
  assert.deepEqual(Object.keys(msg).sort(), ["arrived_t", "base_latency_ms", "flush_arrived_t", "flushed", "item_id", "ms",
    "output_latency_ms", "silent_t", "started_t", "t", "type", "underruns"]);
  assert.deepEqual([msg.arrived_t, msg.started_t, msg.flush_arrived_t, msg.silent_t, msg.underruns],
    [1700000000001, 1700000000002.5, 1700000000100, 1700000000107, 2]);
  assert.equal(msg.type, "played");
  assert.equal(msg.item_id, "a");
  assert.equal(msg.ms, 912.5);
  assert.equal(msg.flushed, true);
  assert.equal(msg.t, 1700000000123.5);
  assert.ok(Math.abs(msg.output_latency_ms - 21.3) < 1e-9);
  assert.ok(Math.abs(msg.base_latency_ms - 5.333) < 1e-9);
  // Browsers without outputLatency (older Safari), or no context yet.
  const bare = playedMessage({ itemId: "b", ms: 0 }, { t: 1, ctx: { baseLatency: 0.01 } });
  assert.equal(bare.flushed, false);
  assert.equal(bare.output_latency_ms, null);
  assert.equal(bare.base_latency_ms, 10);
  assert.equal(playedMessage({ itemId: "c", ms: 1 }).output_latency_ms, null);
  assert.equal(bare.started_t, null);
  assert.equal(playedMessage({ itemId: "d", ms: 1 }, { timing: { startedT: NaN } }).started_t, null);
});

test("by default the first delta plays in the very next block (no start-up wait)", () => {
  const q = new PlaybackQueue(RATE);
  q.push("a", ones(480)); // 10 ms
  assert.equal(q.render(new Float32Array(128)), 128);
  assert.equal(q.underruns, 0);
});

test("an underrun inside an item is counted and grows the prebuffer, up to its cap", () => {
  const q = new PlaybackQueue(RATE, { underrunStepMs: 40, maxPrebufferMs: 100 });
  q.push("a", ones(480));
  renderAll(q, 10); // ran dry after 10 ms: a gap if more of "a" comes
  q.push("a", ones(480));
  assert.equal(q.underruns, 1);
  assert.equal(q.prebuffer, (40 * RATE) / 1000);
  // Now it waits for 40 ms queued (or 40 ms waited) before playing again.
  assert.equal(q.render(new Float32Array(128)), 0);
  q.push("a", ones(1920)); // 10 + 40 ms queued
  assert.equal(q.render(new Float32Array(128)), 128);
  renderAll(q, 30);
  for (let i = 0; i < 3; i++) {
    q.push("a", ones(48));
    renderAll(q, 40);
  }
  assert.equal(q.underruns, 4);
  assert.equal(q.prebuffer, (100 * RATE) / 1000, "capped at maxPrebufferMs");
});

test("a new item after the last one ended is no underrun, nor is audio after a flush", () => {
  const q = new PlaybackQueue(RATE);
  q.push("a", ones(480));
  renderAll(q, 10);
  q.push("b", ones(480)); // the next reply
  renderAll(q, 10);
  q.push("c", ones(4800));
  renderAll(q, 5);
  q.flush();
  renderAll(q, 10); // the fade-out tail runs out
  q.push("c", ones(480)); // a late delta of the flushed item
  assert.equal(q.underruns, 0);
  assert.equal(q.prebuffer, 0);
});

test("the queue tells where in its frame clock each item's first sample was rendered", () => {
  const q = new PlaybackQueue(RATE, { fadeMs: 1 });
  renderAll(q, 2); // 256 frames of silence
  q.push("a", ones(100));
  q.push("b", ones(100));
  renderAll(q, 1);
  assert.deepEqual(q.takeStarted(), [{ itemId: "a", frame: 256 }, { itemId: "b", frame: 356 }]);
  assert.deepEqual(q.takeStarted(), []);
  renderAll(q, 3);
  assert.equal(q.frame, 6 * 128);
});

test("the queue is capped: a push past maxQueuedMs keeps what fits, drops the rest and counts it", () => {
  const q = new PlaybackQueue(RATE, { prebufferMs: 0, fadeMs: 5, maxQueuedMs: 100 }); // 4800 samples
  for (let i = 0; i < 3; i++) q.push("a", ones(1920)); // 3 x 40 ms: the third fits by half
  assert.equal(q.bufferedMs(), 100);
  q.push("a", ones(480)); // no room at all
  assert.deepEqual(q.takeDropped(), { count: 2, ms: 30 });
  assert.deepEqual(q.takeDropped(), { count: 0, ms: 0 }); // reported once
  // What was kept plays to the end, without a gap, and counts as played.
  renderAll(q, 60);
  assert.equal(q.played("a"), 100);
  // Room again once played: nothing more is dropped.
  q.push("b", ones(4800));
  assert.equal(q.bufferedMs(), 100);
  assert.deepEqual(q.takeDropped(), { count: 0, ms: 0 });
});

test("a flood of pushes never grows the queue past its cap", () => {
  const q = new PlaybackQueue(RATE); // the default cap, 120 s
  const chunk = ones(9600); // 200 ms
  for (let i = 0; i < 1000; i++) q.push("flood", chunk); // 200 s
  assert.equal(q.bufferedMs(), 120000);
  const dropped = q.takeDropped();
  assert.equal(dropped.ms, 80000);
  assert.equal(dropped.count, 400);
});
