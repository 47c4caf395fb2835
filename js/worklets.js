// AudioWorklet processor sources, assembled at run time and loaded from Blob URLs.
//
// A worklet loaded from a Blob URL cannot import our other files, so each processor's source is
// the text of the pure library it needs (dsp.js / player.js, shipped to the browser as strings)
// followed by the processor class below. The libraries are the same files node's tests import.
//
// Contract with the main thread (widget.js):
//   capture  -> {pcm: ArrayBuffer (480 PCM16 samples, 20 ms at 24 kHz), end: context time (s) of
//                the frame's last sample, level: RMS of the frame}
//   playback <- {type: "push", itemId, samples: Float32Array at the context rate} | {type: "flush"}
//   playback -> {type: "played", reports: [{itemId, ms}], level, active}
//               {type: "flushed", reports: [{itemId, ms}]}

const CAPTURE = `
class RtvCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate, 24000);
    this.chunker = new FrameChunker(480);
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input yet (device still starting): keep the node alive
    const frames = this.chunker.push(this.resampler.process(channel));
    for (const frame of frames) {
      const floats = pcm16ToFloat(frame);
      this.port.postMessage({ pcm: frame.buffer, end: currentTime + channel.length / sampleRate, level: rms(floats) }, [frame.buffer]);
    }
    return true;
  }
}
registerProcessor("rtv-capture", RtvCapture);
`;

const PLAYBACK = `
class RtvPlayback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = new PlaybackQueue(sampleRate, { prebufferMs: 60, fadeMs: 5 });
    this.reporter = new PlayedReporter(sampleRate, 66);
    this.port.onmessage = (e) => {
      const msg = e.data;
      if (msg.type === "push") this.queue.push(msg.itemId, msg.samples);
      else if (msg.type === "flush") {
        const reports = this.queue.flush();
        this.reporter.noteReported(reports);
        this.port.postMessage({ type: "flushed", reports });
      }
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    const rendered = this.queue.render(out);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    const reports = this.reporter.tick(out.length, this.queue, rendered);
    if (reports.length) this.port.postMessage({ type: "played", reports, level: this.queue.level, active: this.queue.active });
    return true;
  }
}
registerProcessor("rtv-playback", RtvPlayback);
`;

/** The capture processor's module source, given dsp.js's source text. */
export function captureSource(dspSource) {
  return `${dspSource}\n${CAPTURE}`;
}

/** The playback processor's module source, given player.js's source text. */
export function playbackSource(playerSource) {
  return `${playerSource}\n${PLAYBACK}`;
}
