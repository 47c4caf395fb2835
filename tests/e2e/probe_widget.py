"""A tiny anywidget that proves the harness: real mic in, PCM out to a real playback worklet.

It is not ``VoiceChat``; it exercises the same browser paths (getUserMedia with the fake WAV,
AudioWorklets from Blob URLs, binary custom messages both ways, played-sample reporting) so the
harness is known to work independently of the product. Imported inside the test kernel.
"""

from __future__ import annotations

import time

import anywidget
import numpy as np
import traitlets

_ESM = r"""
const WORKLETS = `
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) this.port.postMessage(ch.slice(0));
    return true;
  }
}
class Playback extends AudioWorkletProcessor {
  constructor() {
    super(); this.queue = []; this.offset = 0; this.played = 0;
    this.port.onmessage = (e) => { this.queue.push(e.data); };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      const n = Math.min(out.length - i, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + n), i);
      i += n; this.offset += n; this.played += n;
      if (this.offset >= head.length) { this.queue.shift(); this.offset = 0; }
    }
    out.fill(0, i);
    this.port.postMessage(this.played);
    return true;
  }
}
registerProcessor('probe-capture', Capture);
registerProcessor('probe-playback', Playback);
`;

function resample(x, from, to) {
  const n = Math.floor(x.length * to / from);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * from / to, k = Math.floor(p), f = p - k;
    y[i] = (x[k] || 0) * (1 - f) + (x[k + 1] !== undefined ? x[k + 1] : (x[k] || 0)) * f;
  }
  return y;
}

async function start(model, status) {
  const stream = await navigator.mediaDevices.getUserMedia(
    {audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
  const ctx = new AudioContext();
  const url = URL.createObjectURL(new Blob([WORKLETS], {type: 'application/javascript'}));
  await ctx.audioWorklet.addModule(url);
  const capture = new AudioWorkletNode(ctx, 'probe-capture');
  const playback = new AudioWorkletNode(ctx, 'probe-playback');
  ctx.createMediaStreamSource(stream).connect(capture);
  playback.connect(ctx.destination);
  const frame = Math.round(ctx.sampleRate * 0.02);
  let pending = [], have = 0, seq = 0;
  capture.port.onmessage = (e) => {
    pending.push(e.data); have += e.data.length;
    while (have >= frame) {
      const all = new Float32Array(have);
      let o = 0; for (const p of pending) { all.set(p, o); o += p.length; }
      const chunk = all.subarray(0, frame);
      const rest = all.slice(frame); pending = rest.length ? [rest] : []; have = rest.length;
      const pcm = resample(chunk, ctx.sampleRate, 24000);
      const i16 = new Int16Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) i16[i] = Math.max(-1, Math.min(1, pcm[i])) * 32767;
      model.send({type: 'audio', seq: seq++, t: performance.timeOrigin + performance.now()},
                 undefined, [i16.buffer]);
    }
  };
  model.on('msg:custom', (msg, buffers) => {
    if (msg.type !== 'audio') return;
    const dv = buffers[0];
    const bytes = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength).slice();
    const i16 = new Int16Array(bytes.buffer);
    const f = new Float32Array(i16.length);
    for (let i = 0; i < i16.length; i++) f[i] = i16[i] / 32768;
    playback.port.postMessage(resample(f, 24000, ctx.sampleRate));
  });
  let lastSent = 0;
  playback.port.onmessage = (e) => {
    const played24k = Math.round(e.data * 24000 / ctx.sampleRate);
    if (played24k !== lastSent) {
      lastSent = played24k;
      model.set('played_samples', played24k);
      model.save_changes();
    }
  };
  model.set('context_rate', ctx.sampleRate);
  model.set('state', ctx.state);
  model.save_changes();
  status.textContent = 'probe running at ' + ctx.sampleRate + ' Hz';
}

export default {
  render({model, el}) {
    const status = document.createElement('div');
    status.className = 'rtvoice-probe';
    status.textContent = 'probe starting';
    el.appendChild(status);
    start(model, status).catch((err) => {
      status.textContent = 'probe failed: ' + err;
      console.error('probe failed', err);
    });
  },
};
"""


class ProbeWidget(anywidget.AnyWidget):
    _esm = _ESM
    played_samples = traitlets.Int(0).tag(sync=True)
    context_rate = traitlets.Int(0).tag(sync=True)
    state = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.frames: list[dict] = []
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget, content: dict, buffers: list) -> None:
        if content.get("type") != "audio" or not buffers:
            return
        pcm = np.frombuffer(bytes(buffers[0]), dtype=np.int16)
        rms = float(np.sqrt(np.mean((pcm / 32768.0) ** 2))) if pcm.size else 0.0
        self.frames.append({"seq": content["seq"], "t": content["t"], "recv": time.time() * 1000,
                            "samples": int(pcm.size), "rms": rms})

    def play_tone(self, seconds: float, hz: float = 440.0, chunk_ms: int = 100) -> int:
        """Send a tone as PCM16 24 kHz chunks; return the samples sent."""
        t = np.arange(int(seconds * 24000)) / 24000
        pcm = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
        step = 24 * chunk_ms
        for i in range(0, pcm.size, step):
            self.send({"type": "audio"}, buffers=[pcm[i:i + step].tobytes()])
        return int(pcm.size)

    def summary(self) -> dict:
        speech = [f for f in self.frames if f["rms"] > 0.01]
        seqs = [f["seq"] for f in self.frames]
        return {
            "frames": len(self.frames),
            "speech_frames": len(speech),
            "max_rms": max((f["rms"] for f in self.frames), default=0.0),
            "samples_per_frame": sorted({f["samples"] for f in self.frames}),
            "in_order": seqs == sorted(seqs),
            "played_samples": self.played_samples,
            "context_rate": self.context_rate,
            "state": self.state,
        }
