import { test } from "node:test";
import assert from "node:assert/strict";
import { EchoCheck } from "../lib/echo-check.js";
import { gateOpen } from "../lib/capture.js";

const power = (dbfs) => 10 ** (dbfs / 10);
const rms = (dbfs) => 10 ** (dbfs / 20);

/** Feed `ms` of playback at `playDb` in 66 ms reports, with 20 ms mic frames at `micDb`. */
function run(check, playDb, micDb, ms = 6000) {
  let result = null;
  for (let t = 0; t < ms && !result; t += 66) {
    result = check.playback(power(playDb), 66);
    for (let f = 0; f < 3 && !result; f++) result = check.mic(rms(micDb));
  }
  return result;
}

test("a cancelled echo (50 dB down) gives full duplex, with the measured return loss", () => {
  const check = new EchoCheck();
  const r = run(check, -20, -70);
  assert.equal(r.state, "full");
  assert.equal(check.state, "full");
  assert.ok(Math.abs(r.returnLossDb - 50) < 0.5, r.returnLossDb);
  assert.ok(r.measuredMs >= 1000 && r.measuredMs < 1100, r.measuredMs); // the first window decides
});

test("a canceller that converges after a second or two still gives full duplex", () => {
  // Chromium's AEC3 on the rig: ~19 dB over the first 2 s of a new echo path, 60 dB after.
  const check = new EchoCheck();
  assert.equal(run(check, -20, -39, 2000), null);
  assert.equal(check.state, "checking");
  const r = run(check, -20, -80, 2000);
  assert.equal(r.state, "full");
  assert.ok(r.returnLossDb > 50, r.returnLossDb); // the passing window's figures
  assert.ok(r.measuredMs > 2000, r.measuredMs);
});

test("an uncancelled echo (6 dB down) falls back to half duplex after 5 s, with its best window", () => {
  const check = new EchoCheck();
  assert.equal(run(check, -20, -26, 1000), null); // 6 dB
  assert.equal(run(check, -20, -36, 1100), null); // 16 dB: the best
  assert.equal(run(check, -20, -26, 2800), null);
  const r = run(check, -20, -26);
  assert.equal(r.state, "half");
  assert.ok(r.returnLossDb > 14 && r.returnLossDb < 16.5, r.returnLossDb);
  assert.ok(r.measuredMs >= 5000, r.measuredMs);
});

test("nothing is decided before a window of playback, nor on playback too quiet to judge", () => {
  const check = new EchoCheck();
  assert.equal(run(check, -20, -70, 900), null);
  assert.equal(check.state, "checking");
  const quiet = new EchoCheck();
  assert.equal(run(quiet, -60, -120, 5000), null);
});

test("mic frames before the echo can arrive are not counted", () => {
  const check = new EchoCheck();
  // Silent frames while nothing has been rendered yet would flatter the canceller.
  for (let i = 0; i < 500; i++) check.mic(0);
  assert.equal(check.micFrames, 0);
  assert.equal(run(check, -20, -26).state, "half");
});

test("a decision is final until reset (a new mic measures again)", () => {
  const check = new EchoCheck();
  run(check, -20, -26);
  assert.equal(run(check, -20, -90), null);
  assert.equal(check.state, "half");
  check.reset();
  assert.equal(run(check, -20, -90).state, "full");
});

test("the gate holds the mic on speakers while playing unless the duplex is full", () => {
  const base = { mode: "continuous", pttHeld: false, status: "connected", ready: true, headphones: false, playing: true, msSincePlayback: 0 };
  assert.equal(gateOpen({ ...base, duplex: "checking" }), false);
  assert.equal(gateOpen({ ...base, duplex: "half" }), false);
  assert.equal(gateOpen({ ...base, duplex: "full", playingForMs: 600 }), true);
  // Held while the canceller may still let a reply's first echo through.
  assert.equal(gateOpen({ ...base, duplex: "full", playingForMs: 200 }), false);
  assert.equal(gateOpen({ ...base, duplex: "full", playing: false, playingForMs: 0 }), true);
  assert.equal(gateOpen({ ...base, duplex: "half", playing: false, msSincePlayback: 100 }), false);
  assert.equal(gateOpen({ ...base, duplex: "half", playing: false, msSincePlayback: 300 }), true);
  assert.equal(gateOpen({ ...base, headphones: true, duplex: "half" }), true);
  assert.equal(gateOpen({ ...base, duplex: "full", mode: "mute" }), false);
});

import { SpeechHold } from "../lib/speech-hold.js";

test("the speech hold drops a short echo burst and releases sustained speech with its onset", () => {
  const hold = new SpeechHold({ window: 15, need: 10, floorDbfs: -50 });
  const loud = 10 ** (-20 / 20), quiet = 10 ** (-80 / 20);
  let sent = [];
  // 200 ms of leaked echo (10 frames would pass; 9 do not), then the residue again.
  for (let i = 0; i < 9; i++) sent.push(...hold.push(`burst${i}`, loud));
  for (let i = 0; i < 20; i++) sent.push(...hold.push(`residue${i}`, quiet));
  assert.deepEqual(sent, []);
  // The person talks: once 10 of the last 15 frames are loud, all 15 go, oldest first.
  for (let i = 0; i < 10; i++) sent.push(...hold.push(`voice${i}`, loud));
  assert.equal(sent.length, 15);
  assert.deepEqual(sent.slice(0, 5), ["residue15", "residue16", "residue17", "residue18", "residue19"]);
  assert.equal(sent[14], "voice9");
  // Then every frame at once, quiet or not, until the hold ends.
  assert.deepEqual(hold.push("after", quiet), ["after"]);
  assert.equal(hold.end(), 0);
  assert.deepEqual(hold.push("again", loud), []);
  assert.equal(hold.end(), 1); // held, never sent
});

test("summary() measures without deciding (the per-reply echo in full duplex)", () => {
  const m = new EchoCheck({ windowMs: Infinity });
  assert.equal(m.summary(), null);
  assert.equal(run(m, -20, -80, 3000), null);
  const r = m.summary();
  assert.equal(m.state, "checking");
  assert.ok(Math.abs(r.returnLossDb - 60) < 0.5 && r.measuredMs > 2900, JSON.stringify(r));
});
