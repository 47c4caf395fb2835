import { test } from "node:test";
import assert from "node:assert/strict";
import { MicRoute } from "../lib/mic-route.js";
import { gateOpen, micError, openMic, PLAYBACK_TAIL_MS } from "../lib/capture.js";

const frame = (seq, stream = 7) => ({ stream, seq, t: seq * 20, pcm: new ArrayBuffer(960) });

test("MicRoute sends through Jupyter until the worker announces it sends", () => {
  const sent = [];
  const route = new MicRoute((f) => sent.push(f.seq));
  route.newCapture(7);
  route.frame(frame(0));
  route.frame(frame(1));
  route.linkFromAnnounced(7, 2);
  route.frame(frame(2));
  route.frame(frame(3));
  assert.deepEqual(sent, [0, 1]);
  assert.equal(route.framesSent, 2);
});

test("MicRoute ignores an announcement for another capture", () => {
  const sent = [];
  const route = new MicRoute((f) => sent.push(f.seq));
  route.newCapture(7);
  route.linkFromAnnounced(8, 0);
  route.frame(frame(0));
  assert.deepEqual(sent, [0]);
});

test("MicRoute resends what the link may have lost when it closes, the last `keep` frames", () => {
  const sent = [];
  const route = new MicRoute((f) => sent.push(f.seq), { keep: 3 });
  route.newCapture(7);
  route.linkFromAnnounced(7, 0);
  for (let seq = 0; seq < 5; seq++) route.frame(frame(seq));
  assert.deepEqual(sent, []);
  route.linkClosed();
  assert.deepEqual(sent, [2, 3, 4]);
  route.frame(frame(5)); // back on Jupyter
  route.linkClosed(); // nothing held: nothing again
  assert.deepEqual(sent, [2, 3, 4, 5]);
});

test("a new capture forgets the previous one's hand-over", () => {
  const sent = [];
  const route = new MicRoute((f) => sent.push(f.seq));
  route.newCapture(7);
  route.linkFromAnnounced(7, 0);
  route.frame(frame(0));
  route.newCapture(9);
  route.frame(frame(0, 9));
  route.linkClosed();
  assert.deepEqual(sent, [0]);
});

const open = { mode: "continuous", pttHeld: false, status: "connected", ready: true, headphones: false, playing: false, msSincePlayback: 10_000 };

test("gateOpen: mode, session and half-duplex", () => {
  assert.equal(gateOpen(open), true);
  assert.equal(gateOpen({ ...open, mode: "mute" }), false);
  assert.equal(gateOpen({ ...open, mode: "push_to_talk" }), false);
  assert.equal(gateOpen({ ...open, mode: "push_to_talk", pttHeld: true }), true);
  assert.equal(gateOpen({ ...open, status: "reconnecting" }), false);
  assert.equal(gateOpen({ ...open, ready: false }), false);
  assert.equal(gateOpen({ ...open, playing: true }), false);
  assert.equal(gateOpen({ ...open, msSincePlayback: PLAYBACK_TAIL_MS - 1 }), false);
  assert.equal(gateOpen({ ...open, playing: true, headphones: true }), true); // barge-in by voice
});

test("micError and openMic say what to fix", async () => {
  assert.equal(micError({ name: "NotAllowedError" })[0], "denied");
  assert.equal(micError({ name: "SecurityError" })[0], "denied");
  assert.equal(micError({ name: "NotFoundError" })[0], "no_device");
  assert.deepEqual(micError({ name: "AbortError", message: "busy" }), ["error", "The microphone could not start: busy"]);
  assert.equal((await openMic(undefined)).state, "unavailable");
  const stream = { id: "s" };
  assert.equal((await openMic({ getUserMedia: async (c) => (c.audio.echoCancellation ? stream : null) })).stream, stream);
  assert.equal((await openMic({ getUserMedia: async () => { throw Object.assign(new Error("no"), { name: "NotFoundError" }); } })).state, "no_device");
});
