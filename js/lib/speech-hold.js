// Full duplex on speakers: while the assistant is audible, mic frames wait here until they look
// like someone talking, so a short burst of echo the canceller let through never reaches the
// server's VAD as the start of a turn.
//
// Contract: no top-level side effects (bundled into the capture worklet, js/worklets/capture.js).
//
// On the PulseAudio rig (bench/bench_duplex.py, 2 busy cores) Chromium's canceller keeps the
// echo 60-90 dB down, but now and then lets it through for ~200 ms at nearly its full level,
// then ~300 ms 30 dB down (its filter re-converging after an audio glitch). Speech over the
// assistant lasts longer than that: frames are released once `need` of the last `window` were
// at or above `floorDbfs`. Released frames go out oldest first (the onset included, with their
// capture times), then every frame until the hold ends; frames still held when it ends are
// dropped (the assistant stopped: what was held was its echo, or less than a turn).

export const SPEECH_HOLD = { window: 15, need: 10, floorDbfs: -50 };

// With the echo match (js/lib/echo-match.js, an experiment, off by default): frames that match
// what was played never count, so the hold need not outlast a burst: 4 of the last 5 (80 ms).
export const SPEECH_HOLD_MATCHED = { window: 5, need: 4, floorDbfs: -50 };

export class SpeechHold {
  constructor(options = {}) {
    this.options = { ...SPEECH_HOLD, ...options };
    this.floor = 10 ** (this.options.floorDbfs / 20);
    this.held = []; // [frame, loud]
    this.released = false;
  }

  /** Loud enough to count (before any echo match): what the match is worth computing for. */
  loud(level) {
    return level >= this.floor;
  }

  /**
   * A frame (anything) with its RMS `level`, and whether it matched the played signal (`echo`,
   * then it does not count however loud): the frames to send now, oldest first.
   */
  push(frame, level, echo = false) {
    if (this.released) return [frame];
    this.held.push([frame, level >= this.floor && !echo]);
    if (this.held.length > this.options.window) this.held.shift();
    if (this.held.filter(([, loud]) => loud).length < this.options.need) return [];
    this.released = true;
    const out = this.held.map(([f]) => f);
    this.held = [];
    return out;
  }

  /** The assistant is no longer audible: start over (held frames are dropped). */
  end() {
    const dropped = this.held.length;
    this.held = [];
    this.released = false;
    return dropped;
  }
}
