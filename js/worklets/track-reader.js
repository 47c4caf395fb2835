// The mic track's reader, off the main thread (see js/lib/capture.js): a worker that gets the
// readable of a MediaStreamTrackProcessor and a port to the capture worklet, and posts each
// chunk of audio to the worklet as {type: "pcm", samples: Float32Array, rate} while the page's
// AudioContext runs ({running} from the main thread; a suspended context's clock stands still,
// as its own input would). Ends when the track does. Bundled like capture.js, started from a
// Blob URL.

let running = true;

onmessage = async (e) => {
  const msg = e.data;
  if (typeof msg.running === "boolean") running = msg.running;
  if (!msg.readable) return;
  const reader = msg.readable.getReader();
  const port = msg.port;
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
      if (!running) continue;
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
