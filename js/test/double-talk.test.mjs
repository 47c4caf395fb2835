import { test } from "node:test";
import assert from "node:assert/strict";
import { BandStream, DoubleTalk, bandEdges, fft } from "../lib/double-talk.js";
import { echoPath, rms, talker, to441 } from "./signals.mjs";

// The worklet's view: played at 48 kHz in 128-sample quanta stamped with the audio clock, the
// raw mic at 44.1 kHz in 10 ms chunks arriving 0-15 ms late (the reader's jitter). Returns the
// detections, with `t` in s from the start.
function simulate(played, near, options = {}, path = {}, drop = null) {
  const mic48 = echoPath(played, path);
  if (near) for (let i = 0; i < near.length; i++) mic48[i] += near[i];
  const mic = to441(mic48);
  const dtd = new DoubleTalk(options);
  let s = 77;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const hits = [];
  let m = 0;
  for (let p = 0; p + 128 <= played.length; p += 128) {
    dtd.played(played.subarray(p, p + 128), 48000, (p + 128) / 48000);
    const now = (p + 128) / 48000;
    // Mic chunks whose capture ended by now - their lateness.
    while (m + 441 <= mic.length && (m + 441) / 44100 + 0.015 * rand() <= now) {
      // `drop` ({atS, ms}): the reader lost that much of the mic there (reported, as the track reader does).
      if (drop && m / 44100 >= drop.atS && !drop.done) {
        drop.done = true;
        m += Math.round((drop.ms * 44100) / 1000);
        dtd.lost(drop.ms);
        continue;
      }
      hits.push(...dtd.heard(mic.subarray(m, m + 441), 44100, now));
      m += 441;
    }
  }
  return { hits, dtd };
}

test("the FFT finds a sine's bin and keeps Parseval", () => {
  const n = 64;
  const re = new Float32Array(n), im = new Float32Array(n);
  for (let i = 0; i < n; i++) re[i] = Math.cos((2 * Math.PI * 5 * i) / n);
  fft(re, im);
  assert.ok(Math.abs(re[5] - n / 2) < 1e-3 && Math.abs(re[n - 5] - n / 2) < 1e-3);
  assert.ok(Math.abs(re[4]) < 1e-3 && Math.abs(im[6]) < 1e-3);
});

test("band edges rise, cover 100 Hz-4 kHz, and a tone lands in its band", () => {
  const edges = bandEdges({ rate: 16000, fft: 512, bands: 12, loHz: 100, hiHz: 4000 });
  assert.equal(edges.length, 13);
  for (let k = 1; k < edges.length; k++) assert.ok(edges[k] > edges[k - 1]);
  const bs = new BandStream();
  const x = new Float32Array(4800);
  for (let i = 0; i < x.length; i++) x[i] = 0.1 * Math.sin((2 * Math.PI * 1000 * i) / 48000);
  const hops = bs.push(x, 48000, 0.1);
  assert.ok(hops.length >= 7, `${hops.length}`);
  const bands = hops.at(-1).bands;
  const top = bands.indexOf(Math.max(...bands));
  const f = (k) => (edges[k] * 16000) / 512;
  assert.ok(f(top) <= 1000 && 1000 <= f(top + 1), `band ${top}: ${f(top)}-${f(top + 1)} Hz`);
});

test("hops carry the de-jittered capture time of their last sample", () => {
  const bs = new BandStream();
  const times = [];
  for (let c = 0; c < 100; c++) {
    const late = c % 7 === 0 ? 0 : 0.004 + 0.01 * ((c * 37) % 11) / 11;
    for (const h of bs.push(new Float32Array(441), 44100, (c + 1) * 0.01 + late)) times.push(h.t);
  }
  const steps = times.slice(1).map((t, i) => t - times[i]);
  assert.ok(steps.every((d) => Math.abs(d - 0.01) < 1e-4), `${steps}`);
});

test("echo alone (delay, gain, reverberation) never makes a detection, and the lag is learnt", () => {
  const played = talker(20, 1);
  const { hits, dtd } = simulate(played, null);
  assert.deepEqual(hits, []);
  const lag = dtd.state().lagMs;
  // The echo's 150 ms plus the mic's resampling and reader lateness, minus nothing.
  assert.ok(lag >= 140 && lag <= 190, `lag ${lag}`);
});

test("mic audio the reader lost (reported) keeps the mic's clock: the lag is still learnt, no detection", () => {
  const played = talker(20, 1);
  const { hits, dtd } = simulate(played, null, {}, {}, { atS: 1, ms: 420 });
  assert.deepEqual(hits, []);
  const lag = dtd.state().lagMs;
  assert.ok(lag >= 140 && lag <= 190, `lag ${lag}`);
});

test("echo alone without reverberation, louder (0 dB), and another far-end talker: no detection", () => {
  for (const [seed, path] of [[2, { reverb: false }], [3, { gainDb: 0 }], [4, { delayMs: 60 }]]) {
    const { hits } = simulate(talker(20, seed), null, {}, path);
    assert.deepEqual(hits, [], `seed ${seed} ${JSON.stringify(path)}`);
  }
});

for (const serDb of [0, 6]) {
  test(`a second talker over the echo at SER ${serDb} dB is detected within 100 ms of its onset`, () => {
    for (const seed of [11, 12, 13]) {
      const played = talker(20, seed);
      const echo = echoPath(played);
      const onset = 12 + (seed - 11) * 0.37; // s
      const user = talker(3, seed + 100);
      const near = new Float32Array(played.length);
      const at = Math.round(onset * 48000);
      // Scale the user to SER against the echo over the user's 3 s.
      const g = (10 ** (serDb / 20) * rms(echo, at, at + user.length)) / rms(user);
      // The onset: the user's first 10 ms within 15 dB of their level (a quiet breath before
      // it is not what a listener would call the start).
      const level = rms(user.filter((x) => x !== 0));
      let first = 0;
      while (rms(user, first, first + 480) < level * 10 ** (-15 / 20)) first += 480;
      for (let i = 0; i < user.length && at + i < near.length; i++) near[at + i] = g * user[i];
      const { hits } = simulate(played, near);
      const heardAt = (at + first) / 48000;
      const before = hits.filter((h) => h.t < heardAt - 0.02);
      assert.deepEqual(before, [], `seed ${seed}: detections before the user`);
      assert.ok(hits.length, `seed ${seed}: never detected`);
      const ms = (hits[0].t - heardAt) * 1000;
      console.log(`# SER ${serDb} seed ${seed}: ${ms.toFixed(0)} ms, score ${hits[0].score}`);
      assert.ok(ms <= 100, `seed ${seed}, SER ${serDb}: detected ${ms.toFixed(0)} ms after the onset`);
    }
  });
}
