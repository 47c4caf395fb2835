// Test signals shared by the double-talk detector's tests (js/test/double-talk.test.mjs) and the
// capture worklet's (js/test/capture-worklet.test.mjs): a speech-like talker, an echo path, and
// the raw track's 44.1 kHz.

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

export const rms = (x, a = 0, b = x.length) => { let e = 0; for (let i = a; i < b; i++) e += x[i] * x[i]; return Math.sqrt(e / (b - a)); };

// The echo path at 48 kHz: delay, gain and a sparse reverberant tail (reflections over 80 ms,
// decaying 60 dB in ~200 ms).
export function echoPath(x, { delayMs = 150, gainDb = -6, reverb = true, seed = 5 } = {}) {
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
export function to441(x) {
  const n = Math.floor((x.length * 44100) / 48000);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = (i * 48000) / 44100, k = Math.floor(p), f = p - k;
    y[i] = x[k] * (1 - f) + (x[k + 1] || 0) * f;
  }
  return y;
}
