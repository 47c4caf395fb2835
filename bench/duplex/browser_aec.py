"""Does Chromium's own echo canceller cancel our playback? (issue 15 feasibility)

Needs the PulseAudio rig of bench/duplex/pulse_rig.sh running (null sink "speaker" whose monitor
is looped into the source "mic" Chromium records from) and PULSE_SERVER pointing at it. Chromium
runs headless on its real audio devices: no fake-device flags (only --use-fake-ui-for-media-stream
to grant the permission without a prompt).

For each playback route and echoCancellation true/false, the page plays the far-end speech WAV
and records the mic for --seconds. Routes:
- element:      <audio src=far.wav>                              (what the AEC is known to reference)
- worklet:      AudioWorkletNode -> ctx.destination               (today's widget player)
- worklet-msd:  AudioWorkletNode -> MediaStreamDestination -> <audio>.srcObject
- worklet-pc:   AudioWorkletNode -> MediaStreamDestination -> RTCPeerConnection loopback
                -> remote track -> <audio>.srcObject              (the known loopback technique)
- silent:       nothing played (noise floor)
The echo level is the recording's RMS after the first --skip seconds; attenuation is the
echoCancellation=false level minus the =true level, same route. With --user WAV the rig also
plays the user's voice into the mic bus (double talk) and the recordings are kept for a WER check.

    PULSE_SERVER=unix:/tmp/pulse/native python bench/duplex/browser_aec.py --far /tmp/duplex/far48.wav
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass

import numpy as np
import soundfile as sf

PAGE = r"""<!doctype html><meta charset=utf-8><title>aec</title><body>
<script>
const WORKLET = `
class Player extends AudioWorkletProcessor {
  constructor() { super(); this.q = null; this.pos = 0; this.played = 0;
    this.port.onmessage = (e) => { this.q = e.data; this.pos = 0; }; }
  process(inputs, outputs) {
    const out = outputs[0][0];
    if (this.q) { for (let i = 0; i < out.length; i++) out[i] = this.pos < this.q.length ? this.q[this.pos++] : 0; this.played += out.length; }
    return true;
  }
}
registerProcessor('player', Player);`;

async function pcLoopback(stream) {
  const pc1 = new RTCPeerConnection(), pc2 = new RTCPeerConnection();
  pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
  pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
  const got = new Promise((res) => pc2.ontrack = (e) => res(e.streams[0] || new MediaStream([e.track])));
  stream.getTracks().forEach((t) => pc1.addTrack(t, stream));
  const offer = await pc1.createOffer(); await pc1.setLocalDescription(offer); await pc2.setRemoteDescription(offer);
  const answer = await pc2.createAnswer(); await pc2.setLocalDescription(answer); await pc1.setRemoteDescription(answer);
  window._pcs = [pc1, pc2];
  return got;
}

window.runTest = async ({ mode, ec, seconds, farUrl }) => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: ec, noiseSuppression: false, autoGainControl: false, channelCount: 1 } });
  const track = stream.getAudioTracks()[0];
  const rctx = new AudioContext();
  const src = rctx.createMediaStreamSource(stream);
  const proc = rctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  const sink = rctx.createGain(); sink.gain.value = 0;
  src.connect(proc); proc.connect(sink); sink.connect(rctx.destination);
  await new Promise((r) => setTimeout(r, 300));
  const pctx = new AudioContext();
  let el = null;
  if (mode === 'element') {
    el = new Audio(farUrl); await el.play();
  } else if (mode !== 'silent') {
    await pctx.audioWorklet.addModule(URL.createObjectURL(new Blob([WORKLET], { type: 'text/javascript' })));
    const buf = await pctx.decodeAudioData(await (await fetch(farUrl)).arrayBuffer());
    const node = new AudioWorkletNode(pctx, 'player', { outputChannelCount: [1] });
    if (mode === 'worklet') node.connect(pctx.destination);
    else {
      const msd = pctx.createMediaStreamDestination(); node.connect(msd);
      el = new Audio(); el.srcObject = mode === 'worklet-pc' ? await pcLoopback(msd.stream) : msd.stream; await el.play();
    }
    node.port.postMessage(buf.getChannelData(0));
  }
  const t0 = chunks.length;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  if (el) el.pause();
  track.stop(); await rctx.close(); await pctx.close();
  (window._pcs || []).forEach((p) => p.close()); window._pcs = [];
  const n = chunks.slice(t0).reduce((a, c) => a + c.length, 0);
  const all = new Float32Array(n); let o = 0; for (const c of chunks.slice(t0)) { all.set(c, o); o += c.length; }
  let s = ''; const bytes = new Uint8Array(all.buffer); for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return { rate: rctx.sampleRate, label: track.label, settings: track.getSettings(), pcm: btoa(s), ctxRate: pctx.sampleRate };
};
</script>"""


def db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--far", required=True, help="far-end speech WAV (the assistant)")
    ap.add_argument("--user", help="user's WAV played into the mic bus (double talk)")
    ap.add_argument("--user-delay", type=float, default=3.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--skip", type=float, default=2.0)
    ap.add_argument("--modes", default="silent,element,worklet,worklet-msd,worklet-pc")
    ap.add_argument("--out", default="/tmp/duplex/browser")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    root = tempfile.mkdtemp()
    with open(os.path.join(root, "index.html"), "w") as fh:
        fh.write(PAGE)
    shutil.copy(args.far, os.path.join(root, "far.wav"))
    handler = functools.partial(QuietHandler, directory=root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/index.html"

    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path="/usr/bin/chromium", headless=True,
            ignore_default_args=["--mute-audio"],  # Playwright mutes audio output by default
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"],
            env={**os.environ})
        page = ctx.new_page()
        page.on("console", lambda m: print("console:", m.text) if m.type == "error" and "favicon" not in m.text else None)
        page.goto(url)
        for mode in args.modes.split(","):
            for ec in (False, True):
                user = None
                if args.user:
                    user = subprocess.Popen(["bash", "-c", f"sleep {args.user_delay}; exec paplay -d micbus {args.user}"])
                r = page.evaluate("(a) => window.runTest(a)", {"mode": mode, "ec": ec, "seconds": args.seconds, "farUrl": "far.wav"})
                if user:
                    user.wait()
                x = np.frombuffer(base64.b64decode(r["pcm"]), np.float32)
                rate = int(r["rate"])
                tag = f"{mode}-ec{int(ec)}{'-dt' if args.user else ''}"
                sf.write(os.path.join(args.out, tag + ".wav"), x, rate)
                row = {"mode": mode, "ec": ec, "double_talk": bool(args.user),
                       "level_dbfs": round(db(x[int(args.skip * rate):]), 1),
                       "level_first3s_dbfs": round(db(x[: 3 * rate]), 1),
                       "label": r["label"], "rate": rate,
                       "settings_ec": r["settings"].get("echoCancellation")}
                print(json.dumps(row), flush=True)
                rows.append(row)
        ctx.close()
    by = {(r["mode"], r["ec"]): r for r in rows}
    for mode in args.modes.split(","):
        if (mode, False) in by and (mode, True) in by:
            print(f"{mode}: attenuation by echoCancellation = "
                  f"{by[(mode, False)]['level_dbfs'] - by[(mode, True)]['level_dbfs']:.1f} dB")
    with open(os.path.join(args.out, "results.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    httpd.shutdown()


if __name__ == "__main__":
    main()
