// The mic track's reader, off the page's main thread (see js/lib/capture.js). A dedicated worker
// gets the readable of a MediaStreamTrackProcessor and a port to the capture worklet, and posts
// each chunk of audio to the worklet as {type: "pcm", samples: Float32Array, rate}, while the
// page's AudioContext runs (a suspended context's clock stands still, as its own input would).
// Why a worker: the main thread of a busy page (JupyterLab rendering, widget updates, a CI
// machine under load) can stall for longer than the processor's buffer, which then drops the
// oldest audio; a worker only reads and posts.
//
// Contract:
//   <- {readable, port, running}: start reading (both transferred); once
//   <- {running: boolean}: the context's state changed
//   -> on `port`: {type: "pcm", samples, rate}, and {type: "lost", ms} before a chunk when the
//      processor dropped that much audio before it (the worklet leaves those frames' numbers
//      unsent, so the kernel logs a mic.gap)
// Ends (closing the port and itself) when the track does. Bundled like capture.js and started
// from a Blob URL.

import { lostMs } from "../lib/dsp.js";

let running = true;

onmessage = async (e) => {
  const msg = e.data;
  if (typeof msg.running === "boolean") running = msg.running;
  if (!msg.readable) return;
  const reader = msg.readable.getReader();
  const port = msg.port;
  let expected = null; // where the last chunk ended (µs): a later start means chunks were dropped
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      break; // the track stopped
    }
    if (chunk.done) break;
    const data = chunk.value;
    try {
      const lost = lostMs(expected, data.timestamp);
      expected = data.timestamp + data.duration;
      if (!running) continue;
      if (lost) port.postMessage({ type: "lost", ms: lost });
      const samples = new Float32Array(data.numberOfFrames);
      data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
      port.postMessage({ type: "pcm", samples, rate: data.sampleRate }, [samples.buffer]);
    } finally {
      data.close();
    }
  }
  port.close();
  close();
};
