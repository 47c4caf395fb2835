"""Can Chromium give a processed and an unprocessed track of the same mic at once? ``python bench/duplex/two_tracks.py``

On the PulseAudio rig (tests/duplex_rig.py, echo -6 dB), four fresh Chromiums in turn: the page
asks for the mic with the widget's constraints (and, in two of them, a second time with the
canceller, noise suppression and AGC off), reads each track (MediaStreamTrackProcessor) and plays
5 s of modulated noise. Prints each track's settings and its level before and during playback
(median, p90 in dBFS over 10 ms chunks). Results: docs/DUPLEX.md E, "Two tracks of one mic".
"""
import http.server, sys, tempfile, threading
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from duplex_rig import PulseRig
from playwright.sync_api import sync_playwright

PAGE = r"""<!doctype html><html><body><script>
window.run = async (withRaw, playMs) => {
  const proc = await navigator.mediaDevices.getUserMedia({audio:{echoCancellation:true,noiseSuppression:true,autoGainControl:true,channelCount:1}});
  const streams = [["proc", proc]];
  if (withRaw) streams.push(["raw", await navigator.mediaDevices.getUserMedia({audio:{echoCancellation:false,noiseSuppression:false,autoGainControl:false,channelCount:1}})]);
  const out = {settings: {}, levels: {}};
  const t0 = performance.now();
  for (const [name, stream] of streams) {
    const track = stream.getAudioTracks()[0];
    out.settings[name] = track.getSettings();
    out.levels[name] = [];
    const r = new MediaStreamTrackProcessor({track}).readable.getReader();
    (async () => { for (;;) { const {value, done} = await r.read(); if (done) break;
      const a = new Float32Array(value.numberOfFrames); value.copyTo(a, {planeIndex: 0, format: "f32-planar"});
      let s = 0; for (const x of a) s += x * x; out.levels[name].push([performance.now() - t0, 10 * Math.log10(s / a.length + 1e-12)]); value.close(); } })();
  }
  const ctx = new AudioContext();
  await new Promise((r) => setTimeout(r, 1500));
  const n = Math.round(ctx.sampleRate * playMs / 1000), buf = ctx.createBuffer(1, n, ctx.sampleRate), d = buf.getChannelData(0);
  for (let i = 0; i < n; i++) { const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 4 * i / ctx.sampleRate); d[i] = 0.25 * env * (Math.random() * 2 - 1) * Math.sin(2*Math.PI*300*i/ctx.sampleRate + Math.sin(i/900)); }
  const src = ctx.createBufferSource(); src.buffer = buf; src.connect(ctx.destination);
  out.playStart = performance.now() - t0 + 1000 * (ctx.outputLatency || 0); src.start();
  await new Promise((r) => setTimeout(r, playMs + 1000));
  out.playEnd = out.playStart + playMs;
  for (const [, s] of streams) s.getTracks().forEach((t) => t.stop());
  await ctx.close();
  return out;
};
</script></body></html>"""

class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "text/html"); self.end_headers(); self.wfile.write(PAGE.encode())
    def log_message(self, *a): pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
import numpy as np
def summ(out):
    res = {}
    for name, lv in out["levels"].items():
        lv = np.array(lv)
        before = lv[(lv[:, 0] > 500) & (lv[:, 0] < out["playStart"] - 100), 1]
        during = lv[(lv[:, 0] > out["playStart"] + 1000) & (lv[:, 0] < out["playEnd"] - 200), 1]
        res[name] = (round(float(np.median(before)), 1), round(float(np.median(during)), 1), round(float(np.percentile(during, 90)), 1))
    return res
with PulseRig() as rig, sync_playwright() as p:
    for with_raw in (False, True, True, False):
        ctx = rig.launch(p, Path(tempfile.mkdtemp()))
        page = ctx.new_page(); page.goto(f"http://127.0.0.1:{srv.server_address[1]}/")
        out = page.evaluate("(a) => window.run(a[0], a[1])", [with_raw, 5000])
        print("withRaw", with_raw, {k: {kk: v[kk] for kk in ("echoCancellation", "noiseSuppression", "autoGainControl", "sampleRate")} for k, v in out["settings"].items()})
        print("   median dB before / during (from +1 s) / p90 during:", summ(out))
        ctx.close()
