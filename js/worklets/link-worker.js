// The audio-link worker, off the main thread, between the worklets and the kernel's AudioLink
// WebSocket (see rtvoice_widget/audio_link.py): frames from the capture worklet go to the kernel
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
//
// Bundled like capture.js and started from a Blob URL by js/lib/link.js.

import { Resampler, pcm16ToFloat, toInt16 } from "../lib/dsp.js";
import { LinkSender, PlayerHandover } from "../lib/handover.js";

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
