import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_PENDING, OverflowReporter, PlayerRoute } from "../lib/player-route.js";
import { PushToTalk } from "../lib/push-to-talk.js";
import { LinkWorker } from "../lib/link.js";

const port = () => ({ posted: [], postMessage(msg) { this.posted.push(msg); } });
const pcm = (ms) => new Int16Array(24 * ms).fill(1000).buffer; // 24 kHz PCM16

function route() {
  const sent = [];
  const r = new PlayerRoute({ send: (m) => sent.push(m), pageNow: () => 1000, pageTimeOf: (t) => t * 1000, changed: () => {} });
  return { r, sent };
}

test("audio before the player is ready waits, bounded, and plays in order once it is", () => {
  const { r } = route();
  r.fromJupyter({ type: "audio", item_id: "a" }, pcm(20));
  r.fromJupyter({ type: "audio", item_id: "b" }, pcm(20));
  const node = { port: port() };
  r.ready(node, { sampleRate: 48000 });
  assert.equal(node.port.posted.length, 0);
  r.replay();
  assert.deepEqual(node.port.posted.map((m) => [m.type, m.itemId]), [["push", "a"], ["push", "b"]]);
  assert.ok(node.port.posted[0].samples instanceof Float32Array);
  assert.equal(r.playing, true);
  assert.equal(r.timesOf("a").arrivedT, 1000);
});

test("a flush goes to the player at once and drops what waited for it", () => {
  const { r } = route();
  r.fromJupyter({ type: "audio", item_id: "a" }, pcm(20));
  r.fromJupyter({ type: "flush", item_id: "a" }, null);
  const node = { port: port() };
  r.ready(node, { sampleRate: 24000 });
  r.replay();
  assert.deepEqual(node.port.posted, []);
  r.fromJupyter({ type: "flush", item_id: null }, null);
  assert.deepEqual(node.port.posted, [{ type: "flush", t: 1000 }]);
});

test("past MAX_PENDING the newest audio is dropped and reported once", () => {
  const sent = [];
  const timers = [];
  const r = new PlayerRoute({ send: (m) => sent.push(m), pageNow: () => 0, pageTimeOf: () => 0, changed: () => {} });
  r.overflows = new OverflowReporter((m) => sent.push(m), { setTimer: (fn) => timers.push(fn) });
  for (let i = 0; i < MAX_PENDING + 2; i++) r.fromJupyter({ type: "audio", item_id: "a" }, pcm(10));
  assert.equal(r.pending.length, MAX_PENDING);
  assert.equal(timers.length, 1);
  timers[0]();
  assert.equal(sent.length, 1);
  assert.deepEqual({ ...sent[0], detail: undefined }, { type: "playback", state: "overflow", buffer: "pending", dropped: 2, dropped_ms: 20, detail: undefined });
});

test("with a link worker, Jupyter's player messages go to it (copied, aligned)", () => {
  const { r } = route();
  const forwarded = [];
  r.link = { fromJupyter: (header, payload, t) => forwarded.push([header.type, payload && payload.byteLength, t]) };
  r.fromJupyter({ type: "audio", item_id: "a" }, new DataView(pcm(10)));
  r.fromJupyter({ type: "player_link", conn: 1 }, null);
  assert.deepEqual(forwarded, [["audio", 480, 1000], ["player_link", null, 1000]]);
});

test("the player's reports become `played` messages and levels", () => {
  const { r, sent } = route();
  const node = { port: port() };
  r.ready(node, { sampleRate: 48000, outputLatency: 0.01, baseLatency: 0.005 });
  r.fromJupyter({ type: "audio", item_id: "a" }, pcm(20));
  r.onPlayback({ type: "started", itemId: "a", time: 2 });
  r.onPlayback({ type: "played", reports: [{ itemId: "a", ms: 20 }], level: 0.3, active: true, underruns: 0 });
  assert.equal(sent.length, 1);
  assert.equal(sent[0].type, "played");
  assert.equal(sent[0].item_id, "a");
  assert.equal(sent[0].ms, 20);
  assert.equal(r.level, 0.3);
  r.onPlayback({ type: "flushed", reports: [{ itemId: "a", ms: 25 }], underruns: 1, arrivedT: 5, silentAt: 3 });
  assert.equal(sent[1].flushed, true);
  assert.equal(r.playing, false);
  assert.equal(r.level, 0);
});

test("push-to-talk: press opens, release asks the capture which frame was last", () => {
  const sent = [];
  const gates = [];
  let capture = null;
  const ptt = new PushToTalk({ send: (m) => sent.push(m), capture: () => ({ capture, running: true }), pageNow: () => 42 });
  assert.equal(ptt.set(true), true);
  assert.equal(ptt.set(true), false); // key repeat
  assert.deepEqual(sent, [{ type: "control", action: "ptt_start" }]);
  capture = { gate: (send, pageTime, ack) => gates.push([send, pageTime, ack]) };
  ptt.set(false);
  assert.deepEqual(gates, [[false, 42, "ptt_end"]]);
  assert.equal(sent.length, 1); // ptt_end waits for the capture's answer
  ptt.acked({ ack: "ptt_end", stream: 3, seq: 17 });
  assert.deepEqual(sent[1], { type: "control", action: "ptt_end", stream: 3, through: 17 });
});

test("push-to-talk without a running capture ends the turn at once", () => {
  const sent = [];
  const ptt = new PushToTalk({ send: (m) => sent.push(m), capture: () => ({ capture: null, running: false }), pageNow: () => 0 });
  ptt.set(true);
  ptt.set(false);
  assert.deepEqual(sent.map((m) => m.action), ["ptt_start", "ptt_end"]);
});

test("LinkWorker reports open/closed changes once, and every close to the mic route", () => {
  const calls = [];
  const worker = { posted: [], postMessage(m) { this.posted.push(m); }, terminate() {} };
  const link = new LinkWorker(worker, {
    open: (o) => calls.push(["open", o]), closed: () => calls.push(["closed"]),
    linkFrom: (s, q) => calls.push(["linkFrom", s, q]), arrived: (i, t) => calls.push(["arrived", i, t]),
    overflow: (b, c, ms) => calls.push(["overflow", b, c, ms]),
  });
  worker.onmessage({ data: { type: "closed" } }); // a retry of a link that never opened
  worker.onmessage({ data: { type: "open" } });
  worker.onmessage({ data: { type: "linkFrom", stream: 1, seq: 5 } });
  worker.onmessage({ data: { type: "arrived", itemId: "a", t: 9 } });
  worker.onmessage({ data: { type: "overflow", buffer: "handover", count: 1, ms: 20 } });
  worker.onmessage({ data: { type: "closed" } });
  assert.deepEqual(calls, [["closed"], ["open", true], ["linkFrom", 1, 5], ["arrived", "a", 9],
    ["overflow", "handover", 1, 20], ["closed"], ["open", false]]);
  const payload = new ArrayBuffer(4);
  link.fromJupyter({ type: "audio" }, payload, 3);
  assert.deepEqual(worker.posted, [{ type: "jupyter", header: { type: "audio" }, payload, t: 3 }]);
});
