import { test } from "node:test";
import assert from "node:assert/strict";
import { BandStream, DoubleTalk, bandEdges, fft } from "../lib/double-talk.js";

// A speech-like signal: syllables of 80-300 ms (pauses of 40-400 ms between them), each a
// voiced pulse train (f0 90-220 Hz) or noise, through two resonators (formants) whose
// frequencies change per syllable, so the energy moves between bands as speech's does.
export function talker(seconds, seed, rate = 48000) {
  let s = seed >>> 0;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const n = Math.round(seconds * rate);
  const out = new Float32Array(n);
  let i = 0;
  const res = (f, bw) => {
    const r = Math.exp((-Math.PI * bw) / rate);
    return { a1: 2 * r * Math.cos((2 * Math.PI * f) / rate), a2: -r * r, y1: 0, y2: 0, g: 1 - r };
  };
  while (i < n) {
    const len = Math.round((0.08 + 0.22 * rand()) * rate);
    const voiced = rand() < 0.75;
    const f0 = 90 + 130 * rand();
    const f1 = res(250 + 650 * rand(), 80), f2 = res(900 + 2400 * rand(), 120);
    const amp = 0.1 + 0.25 * rand();
    let phase = 0;
    for (let k = 0; k < len && i < n; k++, i++) {
      phase += f0 / rate;
      let x = voiced ? (phase >= 1 ? ((phase -= 1), 1) : 0) * 4 : (rand() * 2 - 1) * 0.3;
      for (const f of [f1, f2]) {
        const y = f.g * x + f.a1 * f.y1 + f.a2 * f.y2;
        f.y2 = f.y1;
        f.y1 = y;
        x = y;
      }
      const env = Math.sin((Math.PI * k) / len);
      out[i] = amp * env * x;
    }
    i += Math.round((0.04 + 0.36 * rand()) * rate); // a pause
  }
  // Scale to an RMS of -26 dBFS over the voiced part.
  let e = 0, m = 0;
  for (const x of out) if (x !== 0) { e += x * x; m++; }
  const g = 10 ** (-26 / 20) / Math.sqrt(e / Math.max(m, 1));
  for (let k = 0; k < n; k++) out[k] *= g;
  return out;
}

const rms = (x, a = 0, b = x.length) => { let e = 0; for (let i = a; i < b; i++) e += x[i] * x[i]; return Math.sqrt(e / (b - a)); };

// The echo path at 48 kHz: delay, gain and a sparse reverberant tail (reflections over 80 ms,
// decaying 60 dB in ~200 ms).
function echoPath(x, { delayMs = 150, gainDb = -6, reverb = true, seed = 5 } = {}) {
  const rate = 48000;
  let s = seed;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const taps = [[Math.round((delayMs * rate) / 1000), 1]];
  if (reverb) for (let k = 0; k < 24; k++) {
    const d = 0.003 + 0.08 * rand();
    taps.push([taps[0][0] + Math.round(d * rate), (rand() < 0.5 ? -1 : 1) * 0.5 * 10 ** ((-60 * d) / 0.2 / 20)]);
  }
  const g = 10 ** (gainDb / 20);
  const y = new Float32Array(x.length);
  for (const [d, a] of taps) for (let i = d; i < x.length; i++) y[i] += g * a * x[i - d];
  return y;
}

/** 48 kHz -> 44.1 kHz by linear interpolation (the raw track's rate on the rig). */
function to441(x) {
  const n = Math.floor((x.length * 44100) / 48000);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = (i * 48000) / 44100, k = Math.floor(p), f = p - k;
    y[i] = x[k] * (1 - f) + (x[k + 1] || 0) * f;
  }
  return y;
}

// The worklet's view: played at 48 kHz in 128-sample quanta stamped with the audio clock, the
// raw mic at 44.1 kHz in 10 ms chunks arriving 0-15 ms late (the reader's jitter). Returns the
// detections, with `t` in s from the start.
function simulate(played, near, options = {}, path = {}) {
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
