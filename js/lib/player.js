// The assistant-audio queue that runs inside the playback AudioWorklet.
//
// Contract: no top-level side effects (bundled into the worklet, js/worklets/playback.js).
// Samples are floats at the AudioContext's rate; the main thread resamples from 24 kHz before
// queueing. The queue answers one question the kernel needs for truncation: how many ms of each
// item have really been rendered to the speakers.

/**
 * A small adaptive jitter buffer for assistant audio, keyed by conversation item.
 *
 * - Start-up: after silence (start or underrun) output waits until the prebuffer is queued, or
 *   until it has waited that long, whichever comes first, so a short last chunk still plays.
 * - Adaptive prebuffer: it starts at `prebufferMs` (default 0: the first delta plays at once,
 *   because Realtime servers send audio in bursts faster than real time). An underrun (the queue
 *   ran dry and more of the *same* item came later: an audible gap) adds `underrunStepMs`, up to
 *   `maxPrebufferMs`; each is counted in `underruns`. A new item after an item ran out is no
 *   underrun: that is the end of a reply.
 * - Each item starts with a `fadeMs` linear fade-in (no click on the first sample).
 * - `flush()` stops at once: everything queued is dropped except a `fadeMs` fade-out of what is
 *   playing now, and it returns the played ms of every item it touched: those queued, and the
 *   item played last even when its queue had run dry (more of it may have been on the way, and
 *   the kernel waits for this final position to truncate it).
 * - `played(itemId)` is exact: samples written to the output for that item, in ms.
 * - Bound: at most `maxQueuedMs` (default 120 s, ~23 MB of float32 at 48 kHz) wait to be played;
 *   Realtime servers send faster than real time, but not minutes ahead. A push past it keeps
 *   what fits and drops the rest (the newest audio: what plays stays continuous and `played`
 *   stays exact), counted until `takeDropped()` (`{count, ms}`), which the worklet reports.
 */
export class PlaybackQueue {
  constructor(sampleRate, { prebufferMs = 0, fadeMs = 5, underrunStepMs = 40, maxPrebufferMs = 300, maxQueuedMs = 120000 } = {}) {
    if (!(sampleRate > 0)) throw new RangeError("sampleRate must be positive");
    this.sampleRate = sampleRate;
    this.maxQueued = Math.round((maxQueuedMs * sampleRate) / 1000);
    this.dropped = 0; // pushes cut short since takeDropped()
    this.droppedSamples = 0;
    this.prebuffer = Math.round((prebufferMs * sampleRate) / 1000);
    this.underrunStep = Math.round((underrunStepMs * sampleRate) / 1000);
    this.maxPrebuffer = Math.max(this.prebuffer, Math.round((maxPrebufferMs * sampleRate) / 1000));
    this.underruns = 0;
    this.ranDry = null; // the item whose audio ran out last, until other audio is queued
    this.flushing = false; // a flush's fade-out tail is playing
    this.frame = 0; // output frames rendered so far (the queue's own clock)
    this.startedAt = []; // [{itemId, frame}] items whose first sample was rendered, not yet taken
    this.fade = Math.max(1, Math.round((fadeMs * sampleRate) / 1000));
    this.chunks = []; // {itemId, samples, offset}
    this.queued = 0; // samples not yet rendered
    this.playedSamples = new Map(); // itemId -> samples rendered
    this.started = new Set(); // items whose fade-in has begun
    this.waiting = true; // in start-up / underrun state
    this.waited = 0;
    this.fadeOutLeft = 0;
    this.level = 0; // RMS of the last rendered block, for the level meter
    this.lastItem = null; // the item whose audio was rendered last
  }

  push(itemId, samples) {
    if (samples.length === 0) return;
    const room = this.maxQueued - this.queued;
    if (samples.length > room) {
      this.dropped++;
      this.droppedSamples += samples.length - Math.max(0, room);
      if (room <= 0) return;
      samples = samples.subarray(0, room);
    }
    if (this.ranDry !== null) {
      if (this.ranDry === itemId) {
        // The item went on after its queue ran dry: the listener heard a gap. Buffer more.
        this.underruns++;
        this.prebuffer = Math.min(this.maxPrebuffer, this.prebuffer + this.underrunStep);
      }
      this.ranDry = null;
    }
    this.flushing = false; // new audio: the queue running dry after it is a real end or gap
    this.chunks.push({ itemId, samples, offset: 0 });
    this.queued += samples.length;
  }

  /** Audio dropped by the cap since the last call: `{count, ms}`. */
  takeDropped() {
    const dropped = { count: this.dropped, ms: (this.droppedSamples * 1000) / this.sampleRate };
    this.dropped = 0;
    this.droppedSamples = 0;
    return dropped;
  }

  bufferedMs() {
    return (this.queued * 1000) / this.sampleRate;
  }

  played(itemId) {
    return ((this.playedSamples.get(itemId) || 0) * 1000) / this.sampleRate;
  }

  /** Whether audio is audible now or queued to be. */
  get active() {
    return this.queued > 0;
  }

  /** Drop queued audio (all of it) and return [{itemId, ms}] for the items that had audio. */
  flush() {
    const touched = new Set(this.lastItem === null ? [] : [this.lastItem]);
    for (const c of this.chunks) touched.add(c.itemId);
    let keep = this.waiting ? 0 : this.fade;
    const kept = [];
    for (const chunk of this.chunks) {
      if (keep <= 0) break;
      const take = Math.min(keep, chunk.samples.length - chunk.offset);
      kept.push({ itemId: chunk.itemId, samples: chunk.samples.subarray(chunk.offset, chunk.offset + take), offset: 0 });
      keep -= take;
    }
    this.chunks = kept;
    this.queued = kept.reduce((n, c) => n + c.samples.length, 0);
    this.fadeOutLeft = this.queued;
    this.ranDry = null; // what follows a flush is new audio, not the rest of a gap
    this.flushing = this.queued > 0;
    this.waiting = this.queued === 0;
    this.waited = 0;
    // The fade-out tail still counts as played once rendered; report what is certain now plus it.
    const tail = new Map();
    for (const c of kept) tail.set(c.itemId, (tail.get(c.itemId) || 0) + c.samples.length);
    return [...touched].map((itemId) => ({
      itemId,
      ms: (((this.playedSamples.get(itemId) || 0) + (tail.get(itemId) || 0)) * 1000) / this.sampleRate,
    }));
  }

  /** Fill `out` (one channel) and return the number of samples that carried audio. */
  render(out) {
    const written = this._fill(out);
    this.frame += out.length;
    return written;
  }

  /** Take the items that started playing since the last call: [{itemId, frame}]. */
  takeStarted() {
    const started = this.startedAt;
    this.startedAt = [];
    return started;
  }

  _fill(out) {
    out.fill(0);
    if (this.waiting) {
      if (this.queued === 0) {
        this.waited = 0;
        this.level = 0;
        return 0;
      }
      this.waited += out.length;
      if (this.queued < this.prebuffer && this.waited < this.prebuffer) {
        this.level = 0;
        return 0;
      }
      this.waiting = false;
      this.waited = 0;
    }
    let written = 0;
    let energy = 0;
    while (written < out.length && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const take = Math.min(out.length - written, chunk.samples.length - chunk.offset);
      const playedBefore = this.playedSamples.get(chunk.itemId) || 0;
      for (let i = 0; i < take; i++) {
        let gain = 1;
        const nth = playedBefore + i;
        if (nth < this.fade) gain = nth / this.fade;
        if (this.fadeOutLeft > 0) {
          gain *= this.fadeOutLeft / this.fade;
          this.fadeOutLeft--;
        }
        const s = chunk.samples[chunk.offset + i] * gain;
        out[written + i] = s;
        energy += s * s;
      }
      if (playedBefore === 0) this.startedAt.push({ itemId: chunk.itemId, frame: this.frame + written });
      this.started.add(chunk.itemId);
      this.lastItem = chunk.itemId;
      this.playedSamples.set(chunk.itemId, playedBefore + take);
      chunk.offset += take;
      written += take;
      this.queued -= take;
      if (chunk.offset >= chunk.samples.length) this.chunks.shift();
    }
    if (this.queued === 0) {
      this.waiting = true; // underrun or end: re-buffer before the next audio
      // A flush's fade-out tail running out is no gap in the item: it was stopped on purpose.
      if (written > 0 && !this.flushing) this.ranDry = this.lastItem;
      this.flushing = false;
    }
    this.level = written > 0 ? Math.sqrt(energy / written) : 0;
    return written;
  }
}

/**
 * Decides when the playback worklet reports played ms to the kernel: every `intervalMs` of
 * rendered time (~15 Hz by default) while audio plays, at once when the queue runs dry (so the
 * kernel knows the exact end), and never while nothing changes. Flush reports bypass it.
 */
export class PlayedReporter {
  constructor(sampleRate, intervalMs = 66) {
    this.interval = Math.max(1, Math.round((intervalMs * sampleRate) / 1000));
    this.since = 0;
    this.changed = false;
    this.last = new Map();
  }

  /** After rendering a block of `frames` samples, `rendered` of them audio: the reports due now. */
  tick(frames, queue, rendered) {
    this.since += frames;
    if (rendered > 0) this.changed = true;
    if (!this.changed || (this.since < this.interval && queue.active)) return [];
    this.since = 0;
    this.changed = false;
    const due = [];
    for (const [itemId] of queue.playedSamples) {
      const ms = queue.played(itemId);
      if (this.last.get(itemId) !== ms) {
        this.last.set(itemId, ms);
        due.push({ itemId, ms });
      }
    }
    return due;
  }

  /** Remember what a flush already reported so it is not sent twice. */
  noteReported(reports) {
    for (const r of reports) this.last.set(r.itemId, r.ms);
  }
}

/**
 * The kernel message for one played report (`{itemId, ms}` from the worklet). `flushed` marks
 * the final position after a flush. Debug fields for the e2e bench, page clock in ms since the
 * epoch (null when unknown): `t` when the report reached the main thread; `arrived_t` when the
 * item's first audio reached the main thread; `started_t` when the worklet rendered the item's
 * first sample (to the speaker add `output_latency_ms`); `flush_arrived_t` when the last flush
 * reached the page (main thread, or the audio-link worker); `silent_t` when the player's output
 * went silent after it (flushed reports only); `underruns`, the player's gaps so far; and the AudioContext's
 * `outputLatency` / `baseLatency` in ms (null where the browser does not expose them).
 */
export function playedMessage(report, { flushed = false, t, ctx, timing = {} } = {}) {
  const ms = (seconds) => (typeof seconds === "number" && Number.isFinite(seconds) ? seconds * 1000 : null);
  const known = (x) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  return {
    type: "played",
    item_id: report.itemId,
    ms: report.ms,
    flushed,
    t,
    arrived_t: known(timing.arrivedT),
    started_t: known(timing.startedT),
    flush_arrived_t: known(timing.flushArrivedT),
    silent_t: known(timing.silentT),
    underruns: known(timing.underruns),
    output_latency_ms: ctx ? ms(ctx.outputLatency) : null,
    base_latency_ms: ctx ? ms(ctx.baseLatency) : null,
  };
}

