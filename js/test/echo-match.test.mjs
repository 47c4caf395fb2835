import { test } from "node:test";
import assert from "node:assert/strict";
import { Decimator, EchoMatch, Ring, bestMatch } from "../lib/echo-match.js";
import { SPEECH_HOLD_MATCHED, SpeechHold } from "../lib/speech-hold.js";

// Speech-like noise: white noise through a one-pole low-pass, with a slow random envelope.
function voice(n, seed, rate = 48000) {
  let s = seed >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const out = new Float32Array(n);
  let y = 0;
  let env = 0.5;
  for (let i = 0; i < n; i++) {
    if (i % (rate / 50) === 0) env = 0.2 + 0.8 * Math.abs(rand());
    y = 0.9 * y + 0.1 * rand();
    out[i] = 0.5 * env * y;
  }
  return out;
}

test("the decimator averages whole and fractional ratios into the right count", () => {
  assert.deepEqual(new Decimator(6, 1).process([1, 1, 1, 3, 3, 3, 5, 5, 5, 5, 5, 5]), [2, 5]);
  const d = new Decimator(44100, 4000);
  let n = 0;
  for (let i = 0; i < 100; i++) n += d.process(new Float32Array(441)).length;
  assert.ok(Math.abs(n - 4000) <= 1, `${n}`);
});

test("the ring gives the last samples oldest first, zeros before the first", () => {
  const r = new Ring(4);
  r.push([1, 2, 3]);
  assert.deepEqual([...r.latest(4)], [0, 1, 2, 3]);
  r.push([4, 5]);
  assert.deepEqual([...r.latest(3)], [3, 4, 5]);
});

test("bestMatch finds a scaled, delayed copy and its lag; another voice scores low", () => {
  const at4k = (x) => Float32Array.from(new Decimator(48000, 4000).process(x));
  const ref = at4k(voice(24000, 1)); // 2000 samples at 4 kHz
  const lag = 437;
  const mic = ref.slice(2000 - 320 - lag, 2000 - lag).map((x) => -0.05 * x);
  const hit = bestMatch(mic, ref);
  assert.equal(hit.lag, lag);
  assert.ok(hit.score > 0.99, `${hit.score}`);
  const other = bestMatch(at4k(voice(3840, 99)), ref);
  assert.ok(other.score < 0.5, `${other.score}`);
});

test("bestMatch skips lags where nothing was played", () => {
  const mic = voice(320, 3, 4000);
  assert.equal(bestMatch(mic, new Float32Array(2000), 1e-6).score, 0);
});

// The worklet's view: the player's output at 48 kHz in 128-sample blocks, the mic at 24 kHz in
// 20 ms frames arriving `lagMs` behind it.
function run(makeMic, lagMs, frames = 30) {
  const m = new EchoMatch(24000, 48000);
  const played = voice(48000 * 2, 7);
  const lag = (48000 * lagMs) / 1000;
  const verdicts = [];
  let fed = 0;
  for (let f = 0; f < frames; f++) {
    const until = (f + 1) * 960 + 48000 * 0.5; // 0.5 s of playback before the first frame
    for (; fed + 128 <= until; fed += 128) m.played(played.subarray(fed, fed + 128));
    const end = until - lag; // the mic's frame ends lagMs behind the player, at 48 kHz
    const mic = new Float32Array(480);
    for (let i = 0; i < 480; i++) mic[i] = makeMic(played, end - 960 + 2 * i);
    m.heard(mic);
    verdicts.push(m.echo());
  }
  return verdicts;
}

test("echo of what was played at 60-350 ms is matched from its second frame on", () => {
  for (const lagMs of [60, 150, 350]) {
    const v = run((p, k) => 0.06 * (p[k] + p[k + 1]) / 2, lagMs);
    assert.ok(v.slice(1).every(Boolean), `lag ${lagMs}: ${v}`);
  }
});

test("the user's voice over the assistant is not matched", () => {
  const user = voice(48000 * 2, 42);
  const v = run((p, k) => 0.5 * user[k], 150);
  assert.equal(v.filter(Boolean).length, 0, `${v}`);
});

test("echo beyond the longest lag looked at is not matched (the hold decides alone)", () => {
  const v = run((p, k) => 0.06 * p[k], 520);
  assert.ok(v.filter(Boolean).length <= 2, `${v}`);
});

test("with the match the hold releases a voice after 4 loud frames and never a matched burst", () => {
  const hold = new SpeechHold(SPEECH_HOLD_MATCHED);
  const loud = 0.05; // -26 dBFS
  for (let i = 0; i < 50; i++) assert.deepEqual(hold.push(i, loud, true), [], `burst frame ${i}`);
  hold.end();
  assert.deepEqual(hold.push("a", 0.0001), []);
  assert.deepEqual(hold.push("b", loud), []);
  assert.deepEqual(hold.push("c", loud), []);
  assert.deepEqual(hold.push("d", loud), []);
  assert.deepEqual(hold.push("e", loud), ["a", "b", "c", "d", "e"]);
});
