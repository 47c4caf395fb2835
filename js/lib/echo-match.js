// Full duplex on speakers, an experiment (off by default, docs/DUPLEX.md E): tell a burst of the
// assistant's echo in the held mic frames from the user's voice by comparing them with what the
// page played. A burst the browser's canceller lets through is the played signal at the echo
// path's lag (a linear copy); the user's voice is not. So the speech hold (speech-hold.js) can
// let frames that do not match out after ~80 ms instead of waiting 200 ms for every onset.
//
// Contract: no top-level side effects (bundled into the capture worklet, js/worklets/capture.js).
//
// Both signals are reduced to RATE Hz (a boxcar average: speech's energy, what correlates, sits
// below 2 kHz) so one look at every lag up to maxLagMs stays well under a millisecond of the
// audio thread; the mic is compared over its last windowMs with the played signal ending 0 to
// maxLagMs earlier (mic and player on one clock: the player's output is the capture node's input).

export const ECHO_MATCH = { rate: 4000, windowMs: 80, maxLagMs: 400, threshold: 0.5, floorDbfs: -60 };

/** Boxcar decimation from `fromRate` to `toRate` (any ratio >= 1), streaming. */
export class Decimator {
  constructor(fromRate, toRate) {
    this.step = fromRate / toRate;
    this.sum = 0;
    this.n = 0;
    this.due = this.step; // input samples until the next output sample
  }

  /** The output samples these inputs complete (a plain array). */
  process(samples) {
    const out = [];
    for (let i = 0; i < samples.length; i++) {
      this.sum += samples[i];
      this.n++;
      if (this.n >= this.due) {
        out.push(this.sum / this.n);
        this.sum = 0;
        this.due += this.step - this.n;
        this.n = 0;
      }
    }
    return out;
  }
}

/** The last `size` samples pushed, oldest first on `latest(n)`. */
export class Ring {
  constructor(size) {
    this.buf = new Float32Array(size);
    this.end = 0; // samples pushed so far
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) this.buf[(this.end + i) % this.buf.length] = samples[i];
    this.end += samples.length;
  }

  /** The last `n` samples (zeros before the first push), oldest first. */
  latest(n) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const k = this.end - n + i;
      if (k >= 0) out[i] = this.buf[k % this.buf.length];
    }
    return out;
  }
}

/**
 * The best normalised cross-correlation (absolute) of `mic` against `ref` ending `lag` samples
 * before its end, for every lag from 0 to ref.length - mic.length: {score, lag}. Lags where the
 * played segment is quieter than `floor` (mean square) are skipped (nothing played, no echo).
 */
export function bestMatch(mic, ref, floor = 0) {
  const w = mic.length;
  let em = 0;
  for (let i = 0; i < w; i++) em += mic[i] * mic[i];
  let best = { score: 0, lag: -1 };
  if (em === 0) return best;
  const maxLag = ref.length - w;
  // er: energy of ref[start, start + w), slid one sample at a time from the end backwards.
  let start = ref.length - w;
  let er = 0;
  for (let i = 0; i < w; i++) er += ref[start + i] * ref[start + i];
  for (let lag = 0; lag <= maxLag; lag++) {
    start = ref.length - w - lag;
    if (lag > 0) er += ref[start] * ref[start] - ref[start + w] * ref[start + w];
    if (er / w <= floor) continue;
    let num = 0;
    for (let i = 0; i < w; i++) num += mic[i] * ref[start + i];
    const score = Math.abs(num) / Math.sqrt(em * er);
    if (score > best.score) best = { score, lag };
  }
  return best;
}

/**
 * What the page played (`played(samples)` at `refRate`) and what the mic heard
 * (`heard(samples)` at `micRate`), both as they happen; `echo()`: whether the mic's last
 * windowMs looks like the played signal at some lag (score >= threshold).
 */
export class EchoMatch {
  constructor(micRate, refRate, options = {}) {
    this.options = { ...ECHO_MATCH, ...options };
    const { rate, windowMs, maxLagMs, floorDbfs } = this.options;
    this.w = Math.round((rate * windowMs) / 1000);
    this.refLen = this.w + Math.round((rate * maxLagMs) / 1000);
    this.micDown = new Decimator(micRate, rate);
    this.refDown = new Decimator(refRate, rate);
    this.mic = new Ring(this.w);
    this.ref = new Ring(this.refLen);
    this.floor = 10 ** (floorDbfs / 10);
    this.last = { score: 0, lag: -1 };
  }

  played(samples) {
    this.ref.push(this.refDown.process(samples));
  }

  heard(samples) {
    this.mic.push(this.micDown.process(samples));
  }

  /** The lag (ms) of the latest look's best match (-1: none). */
  get lagMs() {
    return this.last.lag < 0 ? -1 : (this.last.lag * 1000) / this.options.rate;
  }

  echo() {
    this.last = bestMatch(this.mic.latest(this.w), this.ref.latest(this.refLen), this.floor);
    return this.last.score >= this.options.threshold;
  }
}
