// Full or half duplex on speakers, decided by measuring how much of our own playback comes back
// through the mic. Chromium's echo canceller references what the browser renders (Web Audio
// included: ~50 dB on a real device path, docs/DUPLEX.md), so on most setups the mic can stay
// open while the assistant talks and the person interrupts by voice. Where it does not cancel
// (another browser, an odd device, a loud speaker next to the mic), the model would hear itself
// and interrupt its own reply: then the mic is held while the assistant is audible, as before.
//
// The measurement runs during the first ~2 s of assistant audio after the mic opens, with the
// mic held meanwhile (no risk while unsure). It compares the power the player rendered with
// the power of the *processed* mic (after the canceller) over the same stretch: the return loss,
// acoustic path and canceller together. The person talking over it lowers the figure, which
// only errs towards the safe side (half duplex).

/** Defaults: enough speech to judge, how quiet the echo must come back, and the floor below
 * which playback is too quiet to judge anything by. */
export const ECHO_CHECK = { minPlaybackMs: 2000, passDb: 25, minPlaybackDbfs: -50, settleMs: 200 };

const dbOf = (power) => 10 * Math.log10(power + 1e-12);

export class EchoCheck {
  constructor(options = {}) {
    this.options = { ...ECHO_CHECK, ...options };
    this.reset();
  }

  /** A new mic (a new device may mean a new echo path): measure again. */
  reset() {
    this.state = "checking"; // then "full" | "half"
    this.playEnergy = 0; // sum of power x ms rendered while measuring
    this.playMs = 0;
    this.micEnergy = 0; // sum of squared frame RMS
    this.micFrames = 0;
    this.result = null;
  }

  /** The player rendered `ms` of audio at mean power `power` (mean square), while active. */
  playback(power, ms) {
    if (this.state !== "checking" || !(ms > 0) || !Number.isFinite(power)) return null;
    this.playEnergy += power * ms;
    this.playMs += ms;
    return this.decide();
  }

  /** A processed mic frame's RMS while the assistant is audible. */
  mic(rms) {
    // The echo arrives after the output latency: frames before it would flatter the canceller.
    if (this.state !== "checking" || this.playMs < this.options.settleMs || !Number.isFinite(rms)) return null;
    this.micEnergy += rms * rms;
    this.micFrames++;
    return this.decide();
  }

  /** What was measured so far: {returnLossDb, playbackDbfs, micDbfs, measuredMs}, or null. */
  summary() {
    if (!(this.playMs > 0) || !this.micFrames) return null;
    const playbackDbfs = dbOf(this.playEnergy / this.playMs);
    const micDbfs = dbOf(this.micEnergy / this.micFrames);
    return { returnLossDb: playbackDbfs - micDbfs, playbackDbfs, micDbfs, measuredMs: this.playMs };
  }

  /** The decision once there is enough to judge by: {state, returnLossDb, playbackDbfs, micDbfs}. */
  decide() {
    const o = this.options;
    if (this.playMs < o.minPlaybackMs || this.micFrames < (o.minPlaybackMs - o.settleMs) / 40) return null;
    const playbackDbfs = dbOf(this.playEnergy / this.playMs);
    if (playbackDbfs < o.minPlaybackDbfs) return null; // too quiet to tell echo from nothing
    const micDbfs = dbOf(this.micEnergy / this.micFrames);
    const returnLossDb = playbackDbfs - micDbfs;
    this.state = returnLossDb >= o.passDb ? "full" : "half";
    this.result = { state: this.state, returnLossDb, playbackDbfs, micDbfs, measuredMs: this.playMs };
    return this.result;
  }
}
