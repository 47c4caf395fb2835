// AudioWorklet processor sources, assembled at run time and loaded from Blob URLs.
//
// A worklet loaded from a Blob URL cannot import our other files, so each processor's source is
// the text of the pure library it needs (dsp.js / player.js, shipped to the browser as strings)
// followed by the processor class below. The libraries are the same files node's tests import.
//
// Contract with the main thread (widget.js):
//   capture  -> {pcm: ArrayBuffer (480 PCM16 samples, 20 ms at 24 kHz), end: context time (s) of
//                the frame's last sample, level: RMS of the frame}
//   capture  <- {type: "link", port}: also post each frame ({pcm, end}) to `port` (the mic-link
//                worker), so frames reach the kernel without waiting for the main thread
//   playback <- {type: "push", itemId, samples: Float32Array at the context rate}
//               | {type: "flush", t: page clock when the flush reached the page (echoed as arrivedT)}
//               | {type: "link", port}: take pushes and flushes from `port` (the mic-link worker) too
//   playback -> {type: "played", reports: [{itemId, ms}], level, active, underruns}
//               {type: "flushed", reports: [{itemId, ms}], underruns, arrivedT, silentAt: context
//                time (s) when the output is silent}
//               {type: "started", itemId, time: context time (s) of the item's first sample}

const CAPTURE = `
class RtvCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate, 24000);
    this.chunker = new FrameChunker(480);
    this.link = null;
    this.port.onmessage = (e) => {
      if (e.data && e.data.type === "link") this.link = e.data.port;
    };
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input yet (device still starting): keep the node alive
    const frames = this.chunker.push(this.resampler.process(channel));
    for (const frame of frames) {
      const floats = pcm16ToFloat(frame);
      const end = currentTime + channel.length / sampleRate;
      if (this.link) {
        const copy = frame.buffer.slice(0);
        this.link.postMessage({ pcm: copy, end }, [copy]);
      }
      this.port.postMessage({ pcm: frame.buffer, end, level: rms(floats) }, [frame.buffer]);
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
    this.queue = new PlaybackQueue(sampleRate, { fadeMs: 5 }); // adaptive prebuffer from 0 ms
    this.reporter = new PlayedReporter(sampleRate, 66);
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
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    for (const { itemId, frame } of this.queue.takeStarted()) {
      this.port.postMessage({ type: "started", itemId, time: currentTime + (frame - blockFrame) / sampleRate });
    }
    const reports = this.reporter.tick(out.length, this.queue, rendered);
    if (reports.length) {
      this.port.postMessage({ type: "played", reports, level: this.queue.level, active: this.queue.active, underruns: this.queue.underruns });
    }
    return true;
  }
}
registerProcessor("rtv-playback", RtvPlayback);
`;

// The mic-link worker, off the main thread, between the worklets and the kernel's MicLink
// WebSocket (see rtvoice_widget/widget.py): frames from the capture worklet go to the kernel;
// assistant audio (resampled here) and flushes from the kernel go to the playback worklet. The
// main thread tells it where to connect, the key the kernel proves itself with and the context
// rate ({type: "open", url, key, sampleRate}),
// hands it the worklets' ports ({type: "capture" | "playback", port}), and keeps it told whether
// frames may go out and how context time maps to the page clock
// ({type: "state", send, contextTime, pageTime}). It answers {type: "open"} / {type: "closed"}
// (reconnecting every 2 s while closed), and {type: "arrived", itemId, t} (page clock) for an
// item's first audio, for the UI and the benchmarks.
const MIC_LINK = `
let ws = null;
let verified = false; // the server proved it is our kernel (see "hello")
let url = null;
let key = null;
let state = { send: false, contextTime: 0, pageTime: 0 };
let seq = 0;
let playback = null;
let sampleRate = 48000;
const resamplers = new Map(); // itemId -> Resampler 24 kHz -> context rate
const HEADER = 20;
const decoder = new TextDecoder();
const pageNow = () => performance.timeOrigin + performance.now();

function fromKernel(data) {
  const view = new DataView(data);
  const length = view.getUint16(0, true);
  const header = JSON.parse(decoder.decode(new Uint8Array(data, 2, length)));
  if (header.type === "hello") {
    // Not our kernel (another service on this port of this machine): never send it audio.
    if (header.key !== key) return ws.close();
    verified = true;
    postMessage({ type: "open" });
  } else if (!verified) return;
  else if (header.type === "flush") {
    if (playback) playback.postMessage({ type: "flush", t: pageNow() });
  } else if (header.type === "audio" && playback) {
    const itemId = String(header.item_id);
    let resampler = resamplers.get(itemId);
    if (!resampler) {
      postMessage({ type: "arrived", itemId, t: pageNow() });
      resampler = new Resampler(24000, sampleRate);
      resamplers.set(itemId, resampler);
      if (resamplers.size > 64) resamplers.delete(resamplers.keys().next().value);
    }
    const samples = resampler.process(pcm16ToFloat(toInt16(new Uint8Array(data, 2 + length))));
    playback.postMessage({ type: "push", itemId, samples }, [samples.buffer]);
  }
}

function connect() {
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => {
    if (e.data instanceof ArrayBuffer) fromKernel(e.data);
  };
  ws.onclose = () => {
    ws = null;
    verified = false;
    postMessage({ type: "closed" });
    setTimeout(connect, 2000);
  };
}

function frame({ pcm, end }) {
  if (!verified || ws.readyState !== 1 || !state.send) return;
  const message = new ArrayBuffer(HEADER + pcm.byteLength);
  const view = new DataView(message);
  view.setFloat64(0, state.pageTime + (end - state.contextTime) * 1000, true); // capture time, page clock
  view.setFloat64(8, performance.timeOrigin + performance.now(), true); // sent, page clock
  view.setUint32(16, seq++, true);
  new Uint8Array(message, HEADER).set(new Uint8Array(pcm));
  ws.send(message);
}

onmessage = (e) => {
  const msg = e.data;
  if (msg.type === "open") {
    url = msg.url;
    key = msg.key;
    sampleRate = msg.sampleRate;
    connect();
  } else if (msg.type === "capture") msg.port.onmessage = (m) => frame(m.data);
  else if (msg.type === "playback") playback = msg.port;
  else if (msg.type === "state") state = msg;
};
`;

/** The mic-link worker's source, given dsp.js's source text. */
export function micLinkSource(dspSource) {
  return `${dspSource}\n${MIC_LINK}`;
}

/** The capture processor's module source, given dsp.js's source text. */
export function captureSource(dspSource) {
  return `${dspSource}\n${CAPTURE}`;
}

/** The playback processor's module source, given player.js's source text. */
export function playbackSource(playerSource) {
  return `${playerSource}\n${PLAYBACK}`;
}
