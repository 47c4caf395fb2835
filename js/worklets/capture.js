// The capture AudioWorklet processor ("rtv-capture"). esbuild bundles this file with what it
// imports into one script, which js/lib/audio-graph.js loads from a Blob URL (a worklet cannot
// import by URL from a Blob-loaded module).
//
// Contract with the main thread (js/lib/capture.js):
//   processorOptions {stream, echoMatch}: a uint32 naming this capture, see MicFrameOrder in
//   rtvoice_widget/audio_link.py; echoMatch (an experiment, off by default): held frames that
//   match what the player played (the node's second input) do not count as speech, and the
//   hold is shorter (js/lib/echo-match.js, SPEECH_HOLD_MATCHED); true or its options; a held
//   frame's message then also carries the match's latest {match: score, lag: ms, echo}
//   doubleTalk: a double-talk detector on the raw mic (js/lib/double-talk.js; true or its
//   options) against the player's output (input 1). While frames are held (below) and none
//   was let out yet, a detection sends the raw mic instead of the processed one, from its last
//   200 ms until the hold ends (unless its options say act: false: then measured only):
//   -> {bargeIn: {t, hopT, onsetMs}}: it did so (t: the page clock, ms; hopT: the capture time
//      of the last hop it decided on; onsetMs: how much raw audio went first)
//   -> {dtd: [{t, hopT, score, excessDb, lagMs}], state}: its detections (t: when it decided),
//      with what it learnt (state: every ~500 ms even without detections)
//   <- {type: "raw", port}: the raw mic comes on `port` like the track's (below), for the detector
//   input 0: the mic, unless the track feeds it (below); input 1: the player's output
//   -> {level: RMS of the frame, seq: null} for a frame not meant for the kernel, else
//      {level, stream, seq, t, pcm: ArrayBuffer (480 PCM16 samples, 20 ms at 24 kHz)}:
//      seq numbers the frames meant for the kernel (0, 1, ... no holes), t is the capture time
//      of the frame's last sample on the page clock (ms since the epoch)
//   <- {type: "gate", send, hold, contextTime, pageTime, ack?}: whether frames are meant for the
//      kernel from now on (mode, readiness, duplex: decided by the main thread); with `hold`
//      (full duplex while the assistant is audible) they wait until they look like speech
//      (js/lib/speech-hold.js) and are numbered as they are released; and a
//      context time (s) read together with the page time (ms) to stamp `t`; with `ack`,
//      answered by {ack, stream, seq: the last frame numbered (-1: none)}, after every frame
//      posted before it
//   <- {type: "link", port}: also post each frame meant for the kernel ({stream, seq, t, pcm})
//      to `port` (the audio-link worker), so it reaches the kernel without waiting for the main
//      thread
//   <- {type: "track", port}: mic audio read from the track comes on `port` (the track
//      reader's worker, js/worklets/track-reader.js) as the two messages below
//   <- {type: "pcm", samples: Float32Array, rate}: mic audio read from the track
//      (MediaStreamTrackProcessor, see js/lib/capture.js); once one came, the node's own
//      input is ignored and these are framed as they arrive instead. Chromium delivers a
//      MediaStreamSource's audio into the graph ~100 ms late once the context has run a while
//      (measured on the PulseAudio rig, docs/DUPLEX.md), the track's audio ~50 ms after the mic
//   <- {type: "lost", ms}: that much of the track's audio was dropped before the next "pcm" (the
//      reader fell behind): while frames go to the kernel unheld, the numbers of the frames
//      it would have made are skipped, so the kernel logs the hole as a mic.gap instead of
//      joining the audio on either side of it unnoticed

import { Framer, pcm16ToFloat, rms } from "../lib/dsp.js";
import { DoubleTalk } from "../lib/double-talk.js";
import { EchoMatch } from "../lib/echo-match.js";
import { SPEECH_HOLD_MATCHED, SpeechHold } from "../lib/speech-hold.js";

// On a double-talk detection, the raw mic's frames sent first: 200 ms (the detector decides
// 100-210 ms after the voice reached the mic on the rig, bench/bench_duplex.py), so the server's
// VAD hears the voice's onset, not its middle.
const RAW_ONSET_FRAMES = 10;

class RtvCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.stream = options.processorOptions.stream;
    this.framer = new Framer(sampleRate); // the mic's audio (the graph's input, or the track's)
    this.link = null;
    this.gate = null; // the main thread's latest {send, contextTime, pageTime}
    this.seq = 0;
    // The echo match compares 24 kHz mic frames with the player's output at the context rate.
    const match = options.processorOptions.echoMatch;
    this.match = match ? new EchoMatch(24000, sampleRate, typeof match === "object" ? match : {}) : null;
    this.hold = new SpeechHold(this.match ? SPEECH_HOLD_MATCHED : {});
    const dtd = options.processorOptions.doubleTalk;
    this.dtd = dtd ? new DoubleTalk(typeof dtd === "object" ? dtd : {}) : null;
    // A detection while frames are held sends the raw mic instead (see onRaw), unless act: false.
    this.dtdAct = !!dtd && !(typeof dtd === "object" && dtd.act === false);
    this.rawFramer = new Framer();
    this.rawRecent = []; // the raw mic's last RAW_ONSET_FRAMES frames while held, {frame, t, level}
    this.rawSending = false; // from a detection until the hold ends
    this.dtdHops = 0; // raw mic chunks since the detector's last state report
    this.silence = new Float32Array(128);
    this.fedRate = 0; // the rate of the "pcm" messages, once they feed this node
    this.port.onmessage = (e) => {
      const msg = e.data;
      if (msg && msg.type === "track") msg.port.onmessage = (m) => this.onTrack(m.data);
      else if (msg && msg.type === "raw") msg.port.onmessage = (m) => this.onRaw(m.data);
      else if (msg && msg.type === "link") this.link = msg.port;
      else if (msg && msg.type === "gate") {
        this.gate = msg;
        // Asked to say which frame was the last one numbered before this gate (-1: none yet).
        if (msg.ack) this.port.postMessage({ ack: msg.ack, stream: this.stream, seq: this.seq - 1 });
      } else this.onTrack(msg);
    };
  }

  /** Context time `t` (s) on the page clock (ms), by the latest gate's pair of readings; null before one. */
  pageTime(t) {
    return this.gate ? this.gate.pageTime + (t - this.gate.contextTime) * 1000 : null;
  }

  /** A message of the track's reader (see the contract above). */
  onTrack(msg) {
    if (msg && msg.type === "pcm") this.fed(msg);
    else if (msg && msg.type === "lost") this.lost(msg.ms);
  }

  /** A message of the raw mic's reader (the double-talk detector's; same contract as the track's). */
  onRaw(msg) {
    if (!this.dtd || !msg) return;
    if (msg.type === "lost") {
      this.dtd.lost(msg.ms);
      if (this.rawSending) this.seq += Math.round(msg.ms / 20); // a hole, as for the track's (lost)
    }
    if (msg.type !== "pcm") return;
    const held = this.dtdAct && this.gate && this.gate.send && this.gate.hold;
    if (held) this.rawFrames(msg);
    else this.rawRecent = [];
    const hits = this.dtd.heard(msg.samples, msg.rate, currentTime);
    const now = this.pageTime(currentTime);
    // Someone talks over the assistant and the processed frames are still held: Chromium's
    // canceller holds a voice that starts over the echo down for 100-500 ms in 1 try of 4, and
    // the hold needs 200 ms of speech; the raw mic has the voice now (with the echo). Not once
    // the hold let processed frames out: the server then hears the voice already, and the
    // raw onset would repeat it.
    if (hits.length && held && !this.rawSending && !this.hold.released) {
      this.rawSending = true;
      const onset = this.rawRecent.splice(0);
      for (const f of onset) this.emit(f.frame, f.t, f.level);
      this.port.postMessage({ bargeIn: { t: now, hopT: this.pageTime(hits[0].t), onsetMs: onset.length * 20 } });
    }
    const report = ++this.dtdHops >= 50;
    if (!hits.length && !report) return;
    this.dtdHops = 0;
    this.port.postMessage({ dtd: hits.map((h) => ({ ...h, t: now, hopT: this.pageTime(h.t) })), state: this.dtd.state() });
  }

  /** The raw mic framed like the processed one (held frames only): sent while rawSending, else kept for an onset. */
  rawFrames(msg) {
    const t = this.pageTime(currentTime);
    for (const frame of this.rawFramer.push(msg.samples, msg.rate)) {
      const level = rms(pcm16ToFloat(frame));
      if (this.rawSending) {
        this.emit(frame, t, level);
        continue;
      }
      this.rawRecent.push({ frame, t, level });
      if (this.rawRecent.length > RAW_ONSET_FRAMES) this.rawRecent.shift();
    }
  }

  process(inputs) {
    const played = inputs[1] && inputs[1][0];
    // The detector's reference runs on every quantum (silence when the player sends nothing),
    // so its clock is the audio thread's.
    if (this.dtd) this.dtd.played(played || this.silence, sampleRate, currentTime + (played || this.silence).length / sampleRate);
    if (this.match && played) this.match.played(played);
    if (this.fedRate) return true; // the track's reader feeds the mic's audio (see fed)
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // no input yet (device still starting): keep the node alive
    this.take(channel, sampleRate, currentTime + channel.length / sampleRate);
    return true;
  }

  /** Mic audio from the track itself: framed now, stamped as captured now. */
  fed(msg) {
    this.fedRate = msg.rate;
    this.take(msg.samples, msg.rate, currentTime);
  }

  /** `ms` of the track's audio never arrived (see the contract above). */
  lost(ms) {
    const gate = this.gate;
    if (gate && gate.send && !gate.hold) this.seq += Math.round(ms / 20);
  }

  /** Samples of the mic at `rate`, the last one captured at context time `end` (s). */
  take(samples, rate, end) {
    const frames = this.framer.push(samples, rate);
    for (const frame of frames) {
      const samples = pcm16ToFloat(frame);
      const level = rms(samples);
      if (this.match) this.match.heard(samples);
      const gate = this.gate;
      if (!gate || !gate.send || !gate.hold) {
        this.hold.end();
        this.rawSending = false;
      }
      if (!gate || !gate.send) {
        this.port.postMessage({ level, seq: null });
        continue;
      }
      const t = this.pageTime(end);
      if (!gate.hold) {
        this.emit(frame, t, level);
        continue;
      }
      if (this.rawSending) {
        this.port.postMessage({ level, seq: null }); // the raw mic goes instead (rawFrames)
        continue;
      }
      // Only a loud held frame is worth the look back (it is what would count).
      const echo = !!this.match && !this.hold.released && this.hold.loud(level) && this.match.echo();
      const ready = this.hold.push({ frame, t, level }, level, echo);
      if (!ready.length) this.port.postMessage(this.match ? { level, seq: null, match: this.match.last.score, lag: this.match.lagMs, echo } : { level, seq: null });
      for (const f of ready) this.emit(f.frame, f.t, f.level);
    }
  }

  emit(frame, t, level) {
    // Numbered here, the one place every frame passes, so both transports share the numbers.
    const meta = { stream: this.stream, seq: this.seq++, t };
    if (this.link) {
      const copy = frame.buffer.slice(0);
      this.link.postMessage({ ...meta, pcm: copy }, [copy]);
    }
    this.port.postMessage({ ...meta, level, pcm: frame.buffer }, [frame.buffer]);
  }
}
registerProcessor("rtv-capture", RtvCapture);
