// Assistant audio on its way to the playback worklet, and the player's reports back to the
// kernel. Player messages (audio, flush, the `player_link` hand-over marker) come through
// Jupyter or over the audio link. With a link worker, those from Jupyter go to it too, to be
// played in order with the link's (handover.js); without one they are resampled and played
// from here. Audio can beat the player (a reply to chat.connect() + chat.say() in one cell
// arrives while the worklets still load): held, bounded, until it is ready.

import { Resampler, pcm16ToFloat, toInt16 } from "./dsp.js";
import { playedMessage } from "./player.js";

/** Messages held for a player that is not ready yet, at most (then counted as dropped). */
export const MAX_PENDING = 1500;

/**
 * A browser buffer dropped audio at its cap (`buffer`: "pending" before the player is ready,
 * "playback" the worklet's queue, "handover" link audio waiting for its marker). Summed and
 * reported to the kernel at most once a second per buffer:
 * {type: "playback", state: "overflow", buffer, dropped, dropped_ms, detail}.
 */
export class OverflowReporter {
  constructor(send, { delayMs = 1000, setTimer = setTimeout } = {}) {
    this.send = send;
    this.delayMs = delayMs;
    this.setTimer = setTimer;
    this.due = new Map(); // buffer -> {count, ms}
  }

  add(buffer, count, ms) {
    const due = this.due.get(buffer);
    if (due) {
      due.count += count;
      due.ms += ms;
      return;
    }
    this.due.set(buffer, { count, ms });
    this.setTimer(() => {
      const { count: n, ms: total } = this.due.get(buffer);
      this.due.delete(buffer);
      this.send({ type: "playback", state: "overflow", buffer, dropped: n, dropped_ms: total,
        detail: `the ${buffer} buffer was full: dropped ${Math.round(total)} ms of assistant audio` });
    }, this.delayMs);
  }
}

export class PlayerRoute {
  /**
   * `send(content)`: a message to the kernel. `pageNow()`: the page clock; `pageTimeOf(t)`: a
   * context time (s) on it. `changed()`: levels or `playing` changed (the views redraw).
   * `rendered(power, ms)`: the player rendered `ms` of audio at mean square `power`.
   */
  constructor({ send, pageNow, pageTimeOf, changed, rendered = () => {} }) {
    this.send = send;
    this.rendered = rendered;
    this.pageNow = pageNow;
    this.pageTimeOf = pageTimeOf;
    this.changed = changed;
    this.overflows = new OverflowReporter(send);
    this.playback = null; // the playback worklet node, once the audio graph is up
    this.sampleRate = null;
    this.ctx = null; // for the output latency in `played` reports
    this.link = null; // the LinkWorker, while there is one
    this.resamplers = new Map(); // itemId -> Resampler 24 kHz -> context rate
    this.pending = []; // [header, buffer] received before the player was ready
    this.level = 0;
    this.playing = false;
    this.lastPlaybackAt = 0; // performance.now() of the player's last report
    this.runStartedAt = null; // performance.now() when the output's current run began (playing)
    this.underruns = 0;
    // Timing for benchmarks, page clock (ms since the epoch): see player.js's playedMessage().
    this.itemTimes = new Map(); // itemId -> {arrivedT, startedT}
  }

  /** The player is up (`playback` node of context `ctx`); `replay()` then plays what waited. */
  ready(playback, ctx) {
    this.playback = playback;
    this.ctx = ctx;
    this.sampleRate = ctx.sampleRate;
    playback.port.onmessage = (e) => this.onPlayback(e.data);
  }

  replay() {
    const pending = this.pending;
    this.pending = [];
    for (const [header, buffer] of pending) this.fromJupyter(header, buffer);
  }

  stop() {
    this.playback = this.ctx = this.link = null;
    this.resamplers.clear();
    this.pending = [];
    this.level = 0;
    this.playing = false;
  }

  timesOf(itemId) {
    let times = this.itemTimes.get(itemId);
    if (!times) {
      times = { arrivedT: null, startedT: null };
      this.itemTimes.set(itemId, times);
      if (this.itemTimes.size > 64) this.itemTimes.delete(this.itemTimes.keys().next().value);
    }
    return times;
  }

  /** An item's first audio reached the page (from the link worker, or here). */
  arrived(itemId, t) {
    const times = this.timesOf(itemId);
    if (times.arrivedT === null) times.arrivedT = t;
    this.playing = true;
  }

  /** A player message that came through Jupyter (`buffer`: PCM16 for audio, else null). */
  fromJupyter(header, buffer) {
    const t = this.pageNow();
    if (this.link) {
      const payload = buffer ? toInt16(buffer).buffer : null;
      this.link.fromJupyter(header, payload, t);
      return;
    }
    if (header.type === "flush") {
      if (this.playback) this.playback.port.postMessage({ type: "flush", t });
      this.pending = [];
    } else if (header.type === "audio") {
      const times = this.timesOf(String(header.item_id));
      if (times.arrivedT === null) times.arrivedT = t;
      this.play(header, buffer);
    }
  }

  play(header, buffer) {
    if (!this.playback) {
      if (this.pending.length < MAX_PENDING) this.pending.push([header, buffer]);
      else this.overflows.add("pending", 1, buffer ? buffer.byteLength / 48 : 0);
      return;
    }
    const itemId = String(header.item_id);
    let resampler = this.resamplers.get(itemId);
    if (!resampler) {
      resampler = new Resampler(24000, this.sampleRate);
      this.resamplers.set(itemId, resampler);
      if (this.resamplers.size > 64) this.resamplers.delete(this.resamplers.keys().next().value);
    }
    const samples = resampler.process(pcm16ToFloat(toInt16(buffer)));
    this.playing = true;
    this.playback.port.postMessage({ type: "push", itemId, samples }, [samples.buffer]);
  }

  /** How long the output has played without a break (0 before its first report of a run). */
  playingForMs(now = performance.now()) {
    return this.playing && this.runStartedAt !== null ? now - this.runStartedAt : 0;
  }

  /** What the playback worklet reports (see js/worklets/playback.js). */
  onPlayback(msg) {
    if (msg.type === "overflow") return this.overflows.add(msg.buffer, msg.count, msg.ms);
    if (msg.type === "started") {
      this.timesOf(msg.itemId).startedT = this.pageTimeOf(msg.time);
      return undefined;
    }
    if (msg.type === "played" || msg.type === "flushed") {
      const t = this.pageNow();
      this.underruns = msg.underruns;
      const flushed = msg.type === "flushed";
      for (const r of msg.reports) {
        const timing = { ...this.timesOf(r.itemId), underruns: this.underruns };
        if (flushed) Object.assign(timing, { flushArrivedT: msg.arrivedT, silentT: this.pageTimeOf(msg.silentAt) });
        this.send(playedMessage(r, { flushed, t, ctx: this.ctx, timing }));
      }
    }
    if (msg.type === "played") {
      if (msg.powerMs > 0) this.rendered(msg.power, msg.powerMs);
      this.level = msg.active ? msg.level : 0;
      this.playing = msg.active;
      this.runStartedAt = msg.active && msg.runMs >= 0 ? performance.now() - msg.runMs : null;
    } else if (msg.type === "flushed") {
      this.level = 0;
      this.playing = false;
      this.runStartedAt = null;
    }
    this.lastPlaybackAt = performance.now();
    this.changed();
    return undefined;
  }
}
