// Full duplex on speakers (docs/DUPLEX.md E): a double-talk detector (DTD) on the mic's RAW
// track (no echo canceller): it tells that the user started talking over the assistant while
// the canceller may still hide them. The capture worklet acts on it (js/worklets/capture.js:
// it sends the raw mic from the voice's onset).
//
// Contract: no top-level side effects (bundled into the capture worklet, js/worklets/capture.js).
//
// Both the raw mic and what the page played (the player's output, the capture node's second
// input: the audio thread's clock) are resampled to RATE, cut into hops of hopMs with a Hann
// window of winMs, and reduced to `bands` log-spaced band energies from loHz to hiHz (a small
// hand-written radix-2 FFT: a worklet cannot import one). Then, per mic hop:
// - the echo path's lag is learnt (every learnEvery hops) as the lag (0..maxLagMs) at which the
//   mic's log band energies over the last historyHops correlate best with the played ones
//   (Pearson per band over time, averaged over bands); the detector starts once one scores
//   >= minCorr;
// - the played band energy expected in the mic is the MAX over played hops at lag - lagLoMs ..
//   lag + lagHiMs (absorbs the hop timing's jitter) of the played band energies held with a
//   decay of decayDb per hop (the room's reverberation: 2 dB per 10 ms is an RT60 of 300 ms);
// - the echo's gain per band is a slowly moving `quantile` (in dB, stepDb per hop) of mic minus
//   that max, learnt on hops with the band played and no double talk in the last hangHops;
// - a band is "over" when the mic exceeds gain + played (+ the band's noise floor) by marginDb
//   and is above micFloorDb; a hop with minBands or more over is flagged; needHops flagged in a
//   row while the assistant is audible (played within lag + tailMs) is a detection, once the
//   gains had warmHops audible hops to settle after the lag was first learnt.
// Time: every hop carries the time (s, one clock for both) its last sample was captured or
// played. The mic's comes from arrival times de-jittered by its sample count (the least
// delayed arrival of the last jitterChunks chunks).

import { Resampler } from "./dsp.js";

export const DOUBLE_TALK = {
  rate: 16000, hopMs: 10, winMs: 20, fft: 512, bands: 12, loHz: 100, hiHz: 4000,
  maxLagMs: 400, lagLoMs: 20, lagHiMs: 20, decayDb: 2, historyHops: 300, learnEvery: 25, minCorr: 0.4,
  quantile: 0.9, stepDb: 0.5, marginDb: 6, micFloorDb: -75, playedFloorDb: -85,
  minBands: 4, needHops: 3, hangHops: 30, warmHops: 200, tailMs: 300, jitterChunks: 100,
};

const FLOOR_DB = -120;
const db = (p) => (p > 1e-12 ? 10 * Math.log10(p) : FLOOR_DB);

/** In-place iterative radix-2 complex FFT of (re, im), length a power of two. */
export function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci;
        const ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
}

/** Band edges in FFT bins: `bands` log-spaced bands from loHz to hiHz. */
export function bandEdges({ rate, fft: size, bands, loHz, hiHz }) {
  const edges = [];
  for (let k = 0; k <= bands; k++) edges.push(Math.round(((loHz * (hiHz / loHz) ** (k / bands)) * size) / rate));
  for (let k = 1; k <= bands; k++) if (edges[k] <= edges[k - 1]) edges[k] = edges[k - 1] + 1;
  return edges;
}

/**
 * One signal at any rate to band energies (dB, mean power per bin of a Hann-windowed hop) every
 * hopMs, each with the time its last sample happened. `push(samples, rate, endTime)`: samples
 * whose last one was at `endTime` (s) by the caller's clock (possibly late: see jitter);
 * returns [{t, bands: Float32Array}].
 */
export class BandStream {
  constructor(options = {}) {
    this.o = { ...DOUBLE_TALK, ...options };
    const o = this.o;
    this.hop = Math.round((o.rate * o.hopMs) / 1000);
    this.win = Math.round((o.rate * o.winMs) / 1000);
    this.edges = bandEdges(o);
    this.window = new Float32Array(this.win);
    for (let i = 0; i < this.win; i++) this.window[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / this.win);
    this.buf = new Float32Array(this.win); // the last win samples at RATE, a ring
    this.at = 0; // where the next sample goes in buf
    this.filled = 0; // samples in buf (up to win)
    this.sinceHop = 0;
    let w2 = 0;
    for (const w of this.window) w2 += w * w;
    this.norm = 1 / w2; // white noise of variance s2: s2 per bin
    this.re = new Float32Array(o.fft);
    this.im = new Float32Array(o.fft);
    this.rate = 0;
    this.resampler = null;
    this.count = 0; // input samples so far (lost ones included)
    this.offsets = []; // arrival minus sample-count time, the last jitterChunks
    this.outCount = 0; // RATE samples so far
  }

  /** `ms` of the input never came (a reader that fell behind): its clock skips them (both the
   * input's count, which places the arrivals, and the output's, which stamps the hops). */
  lost(ms) {
    if (!this.rate) return;
    this.count += Math.round((ms * this.rate) / 1000);
    this.outCount += Math.round((ms * this.o.rate) / 1000);
  }

  push(samples, rate, endTime) {
    if (rate !== this.rate) {
      this.rate = rate;
      this.resampler = rate === this.o.rate ? null : new Resampler(rate, this.o.rate);
      this.count = 0;
      this.offsets = [];
      this.outCount = 0;
    }
    this.count += samples.length;
    this.offsets.push(endTime - this.count / rate);
    if (this.offsets.length > this.o.jitterChunks) this.offsets.shift();
    let base = Infinity;
    for (const x of this.offsets) if (x < base) base = x;
    const x = this.resampler ? this.resampler.process(samples) : samples;
    const out = [];
    for (let i = 0; i < x.length; i++) {
      this.buf[this.at] = x[i];
      this.at = (this.at + 1) % this.win;
      this.outCount++;
      if (this.filled < this.win) this.filled++;
      if (++this.sinceHop >= this.hop && this.filled >= this.win) {
        this.sinceHop = 0;
        out.push({ t: base + this.outCount / this.o.rate, bands: this.analyse() });
      }
    }
    return out;
  }

  analyse() {
    const { re, im, buf, window, edges } = this;
    re.fill(0);
    im.fill(0);
    for (let i = 0; i < this.win; i++) re[i] = buf[(this.at + i) % this.win] * window[i];
    fft(re, im);
    const bands = new Float32Array(edges.length - 1);
    for (let b = 0; b < bands.length; b++) {
      let sum = 0;
      for (let k = edges[b]; k < edges[b + 1]; k++) sum += re[k] * re[k] + im[k] * im[k];
      // Mean power per bin, normalised by the window (white noise of variance s2: s2 in every band).
      bands[b] = db((sum * this.norm) / (edges[b + 1] - edges[b]));
    }
    return bands;
  }
}

/**
 * The detector. `played(samples, rate, endTime)` with what the page played (the audio thread's
 * clock), `heard(samples, rate, endTime)` with the raw mic (the same clock, at arrival); each
 * returns the detections its hops made: [{t: the decision's hop time (s), score: bands over,
 * excessDb: their mean excess, lagMs, bandsDb: each band's excess over the prediction, micDb:
 * the mic's bands}]. `state()`: what it learnt, for a log.
 */
export class DoubleTalk {
  constructor(options = {}) {
    this.o = { ...DOUBLE_TALK, ...options };
    const o = this.o;
    this.hopS = o.hopMs / 1000;
    this.mic = new BandStream(o);
    this.ref = new BandStream(o);
    this.nb = this.mic.edges.length - 1;
    this.maxLag = Math.round(o.maxLagMs / o.hopMs);
    // Played hops, by index from the first: kept long enough for the history and the lag.
    this.refSize = o.historyHops + this.maxLag + 64;
    this.refBands = new Float32Array(this.refSize * this.nb).fill(FLOOR_DB);
    // The same, held with a decay of decayDb per hop (the room's reverberation: what was played
    // keeps sounding, fading): what the echo is predicted from.
    this.refHeld = new Float32Array(this.refSize * this.nb).fill(FLOOR_DB);
    this.refLoud = new Float32Array(this.refSize).fill(FLOOR_DB); // the hop's loudest band
    this.refT0 = null; // time of played hop 0
    this.refN = 0; // played hops so far
    // Mic history for the lag: [jRef, bands, usable].
    this.hist = [];
    this.lag = -1; // hops; -1 until learnt
    this.corr = 0;
    this.gain = new Float32Array(this.nb).fill(NaN); // dB, per band
    this.noise = new Float32Array(this.nb).fill(FLOOR_DB); // dB, per band
    this.run = 0;
    this.warm = 0; // audible hops since the lag was learnt: detections wait for warmHops
    this.hang = 0;
    this.sinceLearn = 0;
    this.maxScore = 0; // highest bands-over count since the last state()
    this.hops = 0;
  }

  played(samples, rate, endTime) {
    for (const h of this.ref.push(samples, rate, endTime)) {
      if (this.refT0 === null) this.refT0 = h.t;
      const slot = this.refN % this.refSize;
      this.refBands.set(h.bands, slot * this.nb);
      const prev = ((this.refN + this.refSize - 1) % this.refSize) * this.nb;
      for (let b = 0; b < this.nb; b++) {
        const held = this.refN ? this.refHeld[prev + b] - this.o.decayDb : FLOOR_DB;
        this.refHeld[slot * this.nb + b] = Math.max(h.bands[b], held);
      }
      let loud = FLOOR_DB;
      for (const v of h.bands) if (v > loud) loud = v;
      this.refLoud[slot] = loud;
      this.refN++;
    }
  }

  lost(ms) {
    this.mic.lost(ms);
  }

  /** The played hop index whose end is nearest `t` (may be out of the kept range). */
  refIndex(t) {
    return this.refT0 === null ? -Infinity : Math.round((t - this.refT0) / this.hopS);
  }

  kept(j) {
    return j >= 0 && j < this.refN && j > this.refN - this.refSize;
  }

  /** Per band, the max played energy (dB, held with its decay) over the lag window before played hop `j`. */
  expected(j, out) {
    out.fill(FLOOR_DB);
    const lo = Math.round(this.o.lagLoMs / this.o.hopMs);
    const hi = Math.round(this.o.lagHiMs / this.o.hopMs);
    for (let k = j - this.lag - hi; k <= j - this.lag + lo; k++) {
      if (!this.kept(k)) continue;
      const base = (k % this.refSize) * this.nb;
      for (let b = 0; b < this.nb; b++) if (this.refHeld[base + b] > out[b]) out[b] = this.refHeld[base + b];
    }
    return out;
  }

  /** Whether anything was played whose echo may be in the mic at played hop `j` (the lag
   * window, and tailMs before it); before the lag is known, whether anything was played within
   * maxLagMs + tailMs. */
  audible(j) {
    const o = this.o;
    const lag = this.lag >= 0 ? this.lag : 0;
    const lo = this.lag >= 0 ? Math.round(o.lagLoMs / o.hopMs) : 0;
    const back = (this.lag >= 0 ? Math.round(o.lagHiMs / o.hopMs) : this.maxLag) + Math.round(o.tailMs / o.hopMs);
    for (let k = j - lag + lo; k >= j - lag - back; k--) if (this.kept(k) && this.refLoud[k % this.refSize] > o.playedFloorDb) return true;
    return false;
  }

  heard(samples, rate, endTime) {
    const found = [];
    for (const h of this.mic.push(samples, rate, endTime)) {
      const hit = this.hop(h);
      if (hit) found.push(hit);
    }
    return found;
  }

  hop({ t, bands }) {
    const o = this.o;
    this.hops++;
    const j = this.refIndex(t);
    const audible = this.audible(j);
    let hit = null;
    let flagged = false;
    if (this.lag >= 0 && audible) {
      const exp = this.expected(j, new Float32Array(this.nb));
      let over = 0;
      let excess = 0;
      const per = new Array(this.nb);
      for (let b = 0; b < this.nb; b++) {
        const echo = exp[b] > o.playedFloorDb && !Number.isNaN(this.gain[b]) ? exp[b] + this.gain[b] : FLOOR_DB;
        const pred = db(10 ** (echo / 10) + 10 ** (this.noise[b] / 10));
        const x = bands[b] - pred;
        per[b] = Math.round(x);
        if (x > o.marginDb && bands[b] > o.micFloorDb) {
          over++;
          excess += x;
        }
      }
      if (over > this.maxScore) this.maxScore = over;
      flagged = over >= o.minBands;
      this.run = flagged ? this.run + 1 : 0;
      if (this.warm < o.warmHops) this.warm++;
      else if (this.run === o.needHops) hit = { t, score: over, excessDb: excess / over, lagMs: this.lag * o.hopMs, bandsDb: per, micDb: Array.from(bands, Math.round) };
      // The gain learns on echo alone: no double talk lately.
      if (!flagged && this.hang === 0) {
        for (let b = 0; b < this.nb; b++) {
          if (exp[b] <= o.playedFloorDb || Number.isNaN(this.gain[b])) continue;
          const r = bands[b] - exp[b];
          this.gain[b] += o.stepDb * (r < this.gain[b] ? o.quantile - 1 : o.quantile);
        }
      }
    } else {
      this.run = 0;
    }
    if (flagged) this.hang = o.hangHops;
    else if (this.hang > 0) this.hang--;
    // Nothing played lately, nobody flagged: the mic's own floor (a low quantile, slowly).
    if (!audible && this.hang === 0) {
      for (let b = 0; b < this.nb; b++) this.noise[b] += 0.5 * (bands[b] < this.noise[b] ? -0.9 : 0.1);
    }
    this.hist.push([j, bands, !flagged && this.hang === 0]);
    if (this.hist.length > o.historyHops) this.hist.shift();
    if (++this.sinceLearn >= o.learnEvery) {
      this.sinceLearn = 0;
      this.learn();
    }
    return hit;
  }

  /** The lag (and, the first time, the gains) from the history. */
  learn() {
    const o = this.o;
    const rows = this.hist.filter(([j, , usable]) => usable && this.kept(j - this.maxLag) && this.kept(j));
    if (rows.length < o.historyHops / 3) return;
    // Only worth it with enough of the history played (echo to align on).
    const playedRows = rows.filter(([j]) => this.refLoud[(j - Math.round(this.lag >= 0 ? this.lag : 0)) % this.refSize] > o.playedFloorDb);
    if (playedRows.length < rows.length / 4 && this.lag < 0) return;
    let best = -1;
    let bestCorr = -Infinity;
    const n = rows.length;
    for (let L = 0; L <= this.maxLag; L++) {
      let total = 0;
      for (let b = 0; b < this.nb; b++) {
        let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        for (const [j, bands] of rows) {
          const x = bands[b];
          const y = this.refBands[((j - L) % this.refSize) * this.nb + b];
          sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y;
        }
        const vx = sxx - (sx * sx) / n;
        const vy = syy - (sy * sy) / n;
        if (vx > 1e-6 && vy > 1e-6) total += (sxy - (sx * sy) / n) / Math.sqrt(vx * vy);
      }
      const c = total / this.nb;
      if (c > bestCorr) {
        bestCorr = c;
        best = L;
      }
    }
    if (bestCorr < o.minCorr) return;
    this.corr = bestCorr;
    const first = this.lag < 0;
    this.lag = best;
    if (!first) return;
    // First lag: each band's gain starts at the quantile of mic minus expected over the history.
    const exp = new Float32Array(this.nb);
    const ratios = Array.from({ length: this.nb }, () => []);
    for (const [j, bands] of rows) {
      this.expected(j, exp);
      for (let b = 0; b < this.nb; b++) if (exp[b] > o.playedFloorDb) ratios[b].push(bands[b] - exp[b]);
    }
    for (let b = 0; b < this.nb; b++) {
      const r = ratios[b].sort((a, c) => a - c);
      this.gain[b] = r.length >= 10 ? r[Math.min(r.length - 1, Math.floor(o.quantile * r.length))] : NaN;
    }
    // A band hardly played yet: the loudest gain of the others (an echo over-predicted, not missed).
    let top = NaN;
    for (const g of this.gain) if (!Number.isNaN(g) && (Number.isNaN(top) || g > top)) top = g;
    for (let b = 0; b < this.nb; b++) if (Number.isNaN(this.gain[b])) this.gain[b] = Number.isNaN(top) ? 0 : top;
  }

  /** What it learnt, for a log: {lagMs, corr, gainDb: [...], maxScore since the last call}. */
  state() {
    const s = {
      lagMs: this.lag < 0 ? -1 : this.lag * this.o.hopMs, corr: Math.round(this.corr * 100) / 100,
      gainDb: Array.from(this.gain, (g) => (Number.isNaN(g) ? null : Math.round(g))), maxScore: this.maxScore,
    };
    this.maxScore = 0;
    return s;
  }
}
