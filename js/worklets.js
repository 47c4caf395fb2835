// AudioWorklet processor sources, assembled at run time and loaded from Blob URLs.
//
// A worklet loaded from a Blob URL cannot import our other files, so each processor's source is
// the text of the pure library it needs (dsp.js / player.js, shipped to the browser as strings)
// followed by the processor class below. The libraries are the same files node's tests import.
//
// Contract with the main thread (widget.js):
//   capture  (processorOptions {stream}: a uint32 naming this capture, see MicFrameOrder in
//            rtvoice_widget/mic_link.py)
//   capture  -> {level: RMS of the frame, seq: null} for a frame not meant for the kernel, else
//               {level, stream, seq, t, pcm: ArrayBuffer (480 PCM16 samples, 20 ms at 24 kHz)}:
//               seq numbers the frames meant for the kernel (0, 1, ... no holes), t is the
//               capture time of the frame's last sample on the page clock (ms since the epoch)
//   capture  <- {type: "gate", send, contextTime, pageTime, ack?}: whether frames are meant for
//               the kernel from now on (mode, readiness, half-duplex: decided by the main
//               thread), and a context time (s) read together with the page time (ms) to stamp
//               `t`; with `ack`, answered by {ack, stream, seq: the last frame numbered (-1:
//               none)}, after every frame posted before it
//            <- {type: "link", port}: also post each frame meant for the kernel ({stream, seq,
//               t, pcm}) to `port` (the mic-link worker), so it reaches the kernel without
//               waiting for the main thread
//   playback <- {type: "push", itemId, samples: Float32Array at the context rate}
//               | {type: "flush", t: page clock when the flush reached the page (echoed as arrivedT)}
//               | {type: "link", port}: take pushes and flushes from `port` (the mic-link worker) too
//   playback -> {type: "played", reports: [{itemId, ms}], level, active, underruns}
//               {type: "flushed", reports: [{itemId, ms}], underruns, arrivedT, silentAt: context
//                time (s) when the output is silent}
//               {type: "started", itemId, time: context time (s) of the item's first sample}
//               {type: "overflow", buffer: "playback", count, ms}: audio its queue's cap dropped
//                (PlaybackQueue, maxQueuedMs), at most once a second

const CAPTURE = `
class RtvCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.stream = options.processorOptions.stream;
    this.resampler = new Resampler(sampleRate, 24000);
    this.chunker = new FrameChunker(480);
    this.link = null;
    this.gate = null; // the main thread's latest {send, contextTime, pageTime}
    this.seq = 0;
    this.port.onmessage = (e) => {
      const msg = e.data;
      if (msg && msg.type === "link") this.link = msg.port;
      else if (msg && msg.type === "gate") {
        this.gate = msg;
        // Asked to say which frame was the last one numbered before this gate (-1: none yet).
        if (msg.ack) this.port.postMessage({ ack: msg.ack, stream: this.stream, seq: this.seq - 1 });
      }
    };
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input yet (device still starting): keep the node alive
    const frames = this.chunker.push(this.resampler.process(channel));
    for (const frame of frames) {
      const level = rms(pcm16ToFloat(frame));
      const gate = this.gate;
      if (!gate || !gate.send) {
        this.port.postMessage({ level, seq: null });
        continue;
      }
      // Numbered here, the one place every frame passes, so both transports share the numbers.
      const end = currentTime + channel.length / sampleRate;
      const meta = { stream: this.stream, seq: this.seq++, t: gate.pageTime + (end - gate.contextTime) * 1000 };
      if (this.link) {
        const copy = frame.buffer.slice(0);
        this.link.postMessage({ ...meta, pcm: copy }, [copy]);
      }
      this.port.postMessage({ ...meta, level, pcm: frame.buffer }, [frame.buffer]);
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
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    for (const { itemId, frame } of this.queue.takeStarted()) {
      this.port.postMessage({ type: "started", itemId, time: currentTime + (frame - blockFrame) / sampleRate });
    }
    const reports = this.reporter.tick(out.length, this.queue, rendered);
    if (reports.length) {
      this.port.postMessage({ type: "played", reports, level: this.queue.level, active: this.queue.active, underruns: this.queue.underruns });
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
`;

// The mic-link worker, off the main thread, between the worklets and the kernel's MicLink
// WebSocket (see rtvoice_widget/mic_link.py): frames from the capture worklet go to the kernel
// (LinkSender: kept while the link is not proven, sent from the moment it is); the player's
// messages, from the link and forwarded by the main thread from Jupyter, go to the playback
// worklet in the kernel's order (PlayerHandover), resampled here. Main thread -> worker:
// {type: "open", url, key, sampleRate} (where to connect, the key the kernel proves itself
// with, the context rate), {type: "capture" | "playback", port} (the worklets' ports),
// {type: "jupyter", header, payload, t} (a player message that came through Jupyter).
// Worker -> main thread: {type: "open"} / {type: "closed"} (reconnecting every 2 s while
// closed), {type: "linkFrom", stream, seq} (from `seq` on, this worker sends every frame of
// `stream`), {type: "arrived", itemId, t} (page clock) for an item's first audio,
// {type: "overflow", buffer: "handover", count, ms} (link audio PlayerHandover's cap dropped
// while it waited for its marker; at most once a second).
const MIC_LINK = `
let ws = null;
let verified = false; // the server proved it is our kernel (see "hello")
let conn = 0; // the kernel's number for this connection
let url = null;
let key = null;
let playback = null;
let sampleRate = 48000;
const resamplers = new Map(); // itemId -> Resampler 24 kHz -> context rate
const HEADER = 24;
const decoder = new TextDecoder();
const pageNow = () => performance.timeOrigin + performance.now();

function toPlayer(header, payload, t) {
  if (!playback) return;
  if (header.type === "flush") {
    playback.postMessage({ type: "flush", t });
    return;
  }
  if (header.type !== "audio") return;
  const itemId = String(header.item_id);
  let resampler = resamplers.get(itemId);
  if (!resampler) {
    postMessage({ type: "arrived", itemId, t });
    resampler = new Resampler(24000, sampleRate);
    resamplers.set(itemId, resampler);
    if (resamplers.size > 64) resamplers.delete(resamplers.keys().next().value);
  }
  const samples = resampler.process(pcm16ToFloat(toInt16(payload)));
  playback.postMessage({ type: "push", itemId, samples }, [samples.buffer]);
}

const player = new PlayerHandover(toPlayer);
setInterval(() => {
  const { count, ms } = player.takeDropped();
  if (count) postMessage({ type: "overflow", buffer: "handover", count, ms });
}, 1000);

const sender = new LinkSender(
  ({ stream, seq, t, pcm }) => {
    const message = new ArrayBuffer(HEADER + pcm.byteLength);
    const view = new DataView(message);
    view.setFloat64(0, t, true); // capture time, page clock
    view.setFloat64(8, pageNow(), true); // sent, page clock
    view.setUint32(16, stream, true);
    view.setUint32(20, seq, true);
    new Uint8Array(message, HEADER).set(new Uint8Array(pcm));
    ws.send(message);
  },
  (stream, seq) => postMessage({ type: "linkFrom", stream, seq }),
);

function fromKernel(data) {
  const t = pageNow();
  const view = new DataView(data);
  const length = view.getUint16(0, true);
  const header = JSON.parse(decoder.decode(new Uint8Array(data, 2, length)));
  if (header.type === "hello") {
    // Not our kernel (another service on this port of this machine): never send it audio.
    if (header.key !== key) return ws.close();
    verified = true;
    conn = header.conn;
    postMessage({ type: "open" });
    sender.opened();
  } else if (verified) player.fromLink(conn, header, new Uint8Array(data, 2 + length), t);
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
    sender.closed();
    postMessage({ type: "closed" });
    setTimeout(connect, 2000);
  };
}

onmessage = (e) => {
  const msg = e.data;
  if (msg.type === "open") {
    url = msg.url;
    key = msg.key;
    sampleRate = msg.sampleRate;
    connect();
  } else if (msg.type === "capture") msg.port.onmessage = (m) => sender.frame(m.data);
  else if (msg.type === "playback") playback = msg.port;
  else if (msg.type === "jupyter") player.fromJupyter(msg.header, msg.payload, msg.t);
};
`;

/** The mic-link worker's source, given dsp.js's and handover.js's source texts. */
export function micLinkSource(dspSource, handoverSource) {
  return `${dspSource}\n${handoverSource}\n${MIC_LINK}`;
}

/** The capture processor's module source, given dsp.js's source text. */
export function captureSource(dspSource) {
  return `${dspSource}\n${CAPTURE}`;
}

/** The playback processor's module source, given player.js's source text. */
export function playbackSource(playerSource) {
  return `${playerSource}\n${PLAYBACK}`;
}
