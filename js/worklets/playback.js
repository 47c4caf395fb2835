// The playback AudioWorklet processor ("rtv-playback"), bundled like capture.js.
//
// Contract with the main thread (js/lib/player-route.js):
//   <- {type: "push", itemId, samples: Float32Array at the context rate}
//      | {type: "flush", t: page clock when the flush reached the page (echoed as arrivedT)}
//      | {type: "link", port}: take pushes and flushes from `port` (the audio-link worker) too
//   -> {type: "played", reports: [{itemId, ms}], level, active, underruns, power, powerMs}:
//      power is the mean square of the audio rendered over the powerMs since the last report
//      (for the echo check, js/lib/echo-check.js); runMs: how long the output has played
//      without a break (RESUME_GAP_MS of silence or more starts a new run; see gateOpen)
//      {type: "flushed", reports: [{itemId, ms}], underruns, arrivedT, silentAt: context time (s)
//       when the output is silent}
//      {type: "started", itemId, time: context time (s) of the item's first sample}
//      {type: "overflow", buffer: "playback", count, ms}: audio its queue's cap dropped
//       (PlaybackQueue, maxQueuedMs), at most once a second

import { PlaybackQueue, PlayedReporter } from "../lib/player.js";

const RESUME_GAP_MS = 100;

class RtvPlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = new PlaybackQueue(sampleRate, { fadeMs: 5 }); // adaptive prebuffer from 0 ms
    this.reporter = new PlayedReporter(sampleRate, 66);
    this.energy = 0; // sum of squares rendered since the last "played" report
    this.energySamples = 0;
    this.runFrames = 0; // output frames rendered since the current run began
    this.gapFrames = Infinity; // silent output frames since audio was last rendered
    this.overflowReportAt = 0; // context time (s) of the next overflow report, at the soonest
    const onMessage = (e) => {
      const msg = e.data;
      if (msg.type === "push") this.queue.push(msg.itemId, msg.samples);
      else if (msg.type === "flush") {
        const reports = this.queue.flush();
        this.reporter.noteReported(reports);
        // Silent once the fade-out tail (what is still queued) has rendered, from the next block.
        const silentAt = currentTime + this.queue.queued / sampleRate;
        this.port.postMessage({ type: "flushed", reports, underruns: this.queue.underruns, silentAt, arrivedT: msg.t });
      } else if (msg.type === "link") msg.port.onmessage = onMessage;
    };
    this.port.onmessage = onMessage;
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    const blockFrame = this.queue.frame;
    const rendered = this.queue.render(out);
    if (rendered > 0) {
      for (let i = 0; i < out.length; i++) this.energy += out[i] * out[i];
      this.energySamples += out.length;
      if (this.gapFrames >= (RESUME_GAP_MS * sampleRate) / 1000) this.runFrames = 0;
      this.runFrames += out.length;
      this.gapFrames = 0;
    } else this.gapFrames += out.length;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    for (const { itemId, frame } of this.queue.takeStarted()) {
      this.port.postMessage({ type: "started", itemId, time: currentTime + (frame - blockFrame) / sampleRate });
    }
    const reports = this.reporter.tick(out.length, this.queue, rendered);
    if (reports.length) {
      const power = this.energySamples ? this.energy / this.energySamples : 0;
      const powerMs = (this.energySamples / sampleRate) * 1000;
      this.energy = this.energySamples = 0;
      const runMs = (this.runFrames / sampleRate) * 1000;
      this.port.postMessage({ type: "played", reports, level: this.queue.level, active: this.queue.active, underruns: this.queue.underruns, power, powerMs, runMs });
    }
    if (this.queue.dropped > 0 && currentTime >= this.overflowReportAt) {
      this.overflowReportAt = currentTime + 1;
      const { count, ms } = this.queue.takeDropped();
      this.port.postMessage({ type: "overflow", buffer: "playback", count, ms });
    }
    return true;
  }
}
registerProcessor("rtv-playback", RtvPlayback);
