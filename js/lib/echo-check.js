// Full or half duplex on speakers, decided by measuring how much of our own playback comes back
// through the mic. Chromium's echo canceller references what the browser renders (Web Audio
// included: ~50 dB on a real device path, docs/DUPLEX.md), so on most setups the mic can stay
// open while the assistant talks and the person interrupts by voice. Where it does not cancel
// (another browser, an odd device, a loud speaker next to the mic), the model would hear itself
// and interrupt its own reply: then the mic is held while the assistant is audible, as before.
//
// The measurement runs while the assistant is audible after the mic opens, with the mic held
// meanwhile (no risk while unsure), in windows of 1 s of playback. Each window compares the
// power the player rendered with the power of the *processed* mic (after the canceller) over
// the same stretch: the return loss, acoustic path and canceller together. The first window
// that passes decides full duplex; half duplex only once 5 s of playback passed none. Why
// windows: a canceller converges on a new echo path within a second or two of hearing it (on
// the rig, Chromium's AEC3 measured 19 dB over a reply's first 2 s in some runs, 36 dB in
// others, and 61 dB over the rest of the same reply), so a verdict on the first 2 s alone
// judged the canceller before it had started. The person talking over it lowers the figure,
// which only errs towards the safe side (half duplex).

/** Defaults: the window of playback judged at a time, the playback after which no passing
 * window means half duplex, how quiet the echo must come back, the floor below which playback
 * is too quiet to judge anything by, and the playback before the first echo can arrive. */
export const ECHO_CHECK = { windowMs: 1000, maxPlaybackMs: 5000, passDb: 25, minPlaybackDbfs: -50, settleMs: 200 };

const dbOf = (power) => 10 * Math.log10(power + 1e-12);
// Mic frames are 20 ms: a window is judged with half its frames or more (a busy page drops some).
const FRAME_MS = 20;

class Window {
  constructor() {
    this.playEnergy = 0; // sum of power x ms rendered
    this.playMs = 0;
    this.micEnergy = 0; // sum of squared frame RMS
    this.micFrames = 0;
  }

  /** {returnLossDb, playbackDbfs, micDbfs, measuredMs}, or null with nothing to compare. */
  figures() {
    if (!(this.playMs > 0) || !this.micFrames) return null;
    const playbackDbfs = dbOf(this.playEnergy / this.playMs);
    const micDbfs = dbOf(this.micEnergy / this.micFrames);
    return { returnLossDb: playbackDbfs - micDbfs, playbackDbfs, micDbfs, measuredMs: this.playMs };
  }
}

export class EchoCheck {
  constructor(options = {}) {
    this.options = { ...ECHO_CHECK, ...options };
    this.reset();
  }

  /** A new mic (a new device may mean a new echo path): measure again. */
  reset() {
    this.state = "checking"; // then "full" | "half"
    this.total = new Window(); // everything measured since the reset
    this.window = new Window(); // the window being filled
    this.best = null; // the figures of the best window judged so far
    this.result = null;
  }

  /** Playback rendered since the reset, in ms. */
  get playMs() {
    return this.total.playMs;
  }

  /** Mic frames measured since the reset. */
  get micFrames() {
    return this.total.micFrames;
  }

  /** The player rendered `ms` of audio at mean power `power` (mean square), while active. */
  playback(power, ms) {
    if (this.state !== "checking" || !(ms > 0) || !Number.isFinite(power)) return null;
    for (const w of [this.total, this.window]) {
      w.playEnergy += power * ms;
      w.playMs += ms;
    }
    return this.decide();
  }

  /** A processed mic frame's RMS while the assistant is audible. */
  mic(rms) {
    // The echo arrives after the output latency: frames before it would flatter the canceller.
    if (this.state !== "checking" || this.total.playMs < this.options.settleMs || !Number.isFinite(rms)) return null;
    for (const w of [this.total, this.window]) {
      w.micEnergy += rms * rms;
      w.micFrames++;
    }
    return this.decide();
  }

  /** Everything measured since the reset: {returnLossDb, playbackDbfs, micDbfs, measuredMs}, or null. */
  summary() {
    return this.total.figures();
  }

  /** Judge the window once it is full; the decision, or null while there is none:
   * {state, returnLossDb, playbackDbfs, micDbfs, measuredMs} (the figures of the passing
   * window, or of the best one on a fallback; measuredMs: all playback measured). */
  decide() {
    const o = this.options;
    const w = this.window;
    if (w.playMs < o.windowMs || w.micFrames < (0.5 * o.windowMs) / FRAME_MS) return null;
    this.window = new Window();
    const figures = w.figures();
    if (figures.playbackDbfs < o.minPlaybackDbfs) return null; // too quiet to tell echo from nothing
    if (!this.best || figures.returnLossDb > this.best.returnLossDb) this.best = figures;
    if (figures.returnLossDb >= o.passDb) return this.conclude("full", figures);
    if (this.total.playMs >= o.maxPlaybackMs) return this.conclude("half", this.best);
    return null;
  }

  conclude(state, figures) {
    this.state = state;
    this.result = { state, ...figures, measuredMs: this.total.playMs };
    return this.result;
  }
}
