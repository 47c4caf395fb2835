// The mic: asking for it, the capture worklet node that frames it (js/worklets/capture.js), and
// the gate that decides which frames are meant for the kernel.

/** The constraints the mic is opened with: the browser's echo canceller and friends on. */
export const MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
};

// Half-duplex tail: after the assistant's audio stops, the mic stays closed this long.
export const PLAYBACK_TAIL_MS = 250;

// Full duplex: the mic is held for the first ms of each run of playback (a reply, or audio
// resuming after a gap). The browser's canceller can let the first few hundred ms of echo
// through when output resumes after silence (measured on the PulseAudio rig: the server heard
// speech 330-440 ms into a reply, never later in it); a barge-in in that moment is heard a
// moment later, once the person is still talking.
export const ONSET_GUARD_MS = 600;

/**
 * Whether a captured frame should go to the kernel now: the mode (mute, push-to-talk held),
 * the session (connected and confirmed by the server) and, on speakers, the duplex: `duplex`
 * is "full" once the echo check found our playback cancelled (js/lib/echo-check.js), else
 * ("checking", "half") the model could hear itself, so the mic is held while the assistant is
 * audible and `PLAYBACK_TAIL_MS` after.
 */
export function gateOpen({ mode, pttHeld, status, ready, headphones, duplex = "half", playing, msSincePlayback, playingForMs = 0 }) {
  if (mode === "mute") return false;
  if (mode === "push_to_talk" && !pttHeld) return false;
  if (status !== "connected") return false;
  if (!ready) return false; // the server has not confirmed the session yet
  if (headphones) return true;
  if (duplex !== "full") return !(playing || msSincePlayback < PLAYBACK_TAIL_MS);
  return !(playing && playingForMs < ONSET_GUARD_MS);
}

const NO_MIC_HERE = "This page cannot use a microphone (it needs https or localhost, and some front ends such as VS Code webviews block it). Type below instead, or open the notebook in JupyterLab in a browser.";

/** What to tell the person when getUserMedia failed: [mic state, detail]. */
export function micError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return ["denied", "Microphone access was denied. Allow it for this site in the browser's address bar, then click the mic button. You can also type below."];
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return ["no_device", "No microphone was found. Connect one and click the mic button, or type below."];
  }
  return ["error", `The microphone could not start: ${err && err.message ? err.message : name}`];
}

/**
 * Ask for the mic: `{stream}`, or `{state, detail}` saying why there is none
 * (`mediaDevices`: `navigator.mediaDevices`, absent on an insecure page).
 */
export async function openMic(mediaDevices) {
  if (!mediaDevices || !mediaDevices.getUserMedia) return { state: "unavailable", detail: NO_MIC_HERE };
  try {
    return { stream: await mediaDevices.getUserMedia(MIC_CONSTRAINTS) };
  } catch (err) {
    const [state, detail] = micError(err);
    return { state, detail };
  }
}

/** Audio read from the track this many 10 ms chunks behind at most before the oldest are dropped
 * (a reader held up for longer loses audio, as the graph's own input would glitch). */
const TRACK_BUFFER_CHUNKS = 50;

/**
 * The echo match (js/lib/echo-match.js) is an experiment, off by default: a page (the duplex
 * bench, bench/bench_duplex.py) turns it on by setting `window.rtvEchoMatch` first: true, or
 * options for it (ECHO_MATCH in echo-match.js, e.g. {maxLagMs: 1000}).
 */
const ECHO_MATCH_ON = () => {
  const on = globalThis.rtvEchoMatch;
  return on === true || (typeof on === "object" && on !== null) ? on : false;
};

/**
 * The double-talk detector (js/lib/double-talk.js): on by default where the browser can read a
 * track (it needs the player's output and a worker reading a second, raw, mic track). With it,
 * a voice over the assistant reaches the server ~150 ms after it started instead of ~340 (see
 * the capture worklet's contract). A page sets `window.rtvDoubleTalk` first to change that:
 * false (off: the speech hold alone, bench/bench_duplex.py's variant "hold"), or options for
 * it (DOUBLE_TALK in double-talk.js; `act: false` detects but never acts).
 */
const DOUBLE_TALK_ON = () => {
  const on = globalThis.rtvDoubleTalk;
  return typeof on === "object" && on !== null ? on : on !== false;
};

/** The detector's mic: the same device as `track`, nothing processed (the canceller cannot hide a voice). */
export function rawMicConstraints(track) {
  const deviceId = track && track.getSettings ? track.getSettings().deviceId : undefined;
  return {
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1,
      ...(deviceId ? { deviceId: { exact: deviceId } } : {}) },
  };
}

/**
 * Whether to read the mic from the track (below): where the browser has
 * `MediaStreamTrackProcessor` (Chromium), unless a page set `window.rtvMicFromTrack = false`
 * first (the duplex bench does, to measure the graph's input beside it).
 */
const MIC_FROM_TRACK = () => globalThis.rtvMicFromTrack !== false && typeof MediaStreamTrackProcessor === "function";

/**
 * The capture worklet node on a mic stream. `id` (a random uint32) names this capture: the
 * kernel orders frames per (stream, seq). `onFrame(frame)` gets what the worklet posts.
 *
 * With `feed` (see MIC_FROM_TRACK) and `readerSource` (the script of js/worklets/track-reader.js),
 * the mic's audio is read from the track by a worker and posted to the worklet, not taken
 * through a MediaStreamSource: Chromium hands a MediaStreamSource's audio to the graph through a
 * buffer that grows to ~100 ms once the context has run a while, the track's about 50 ms after
 * it reached the device (PulseAudio rig, docs/DUPLEX.md). The reader is a worker, never the
 * page's main thread: a main thread that stalls for longer than the reader's buffer (500 ms)
 * loses audio, which happened under CI's full load when it was read there. Where no worker can
 * start (a CSP, a stream that cannot be transferred) or without `feed`: the graph's input.
 * `played`: the player's worklet node, the echo match's reference (with `echoMatch`) and the
 * double-talk detector's (with `doubleTalk`, which also opens the mic a second time, raw, and
 * reads that track with a second worker into the worklet: see openRaw).
 */
export class Capture {
  constructor(ctx, stream, onFrame, { feed = MIC_FROM_TRACK(), readerSource = null, played = null, echoMatch = ECHO_MATCH_ON(), doubleTalk = DOUBLE_TALK_ON(), mediaDevices = null } = {}) {
    this.ctx = ctx;
    this.stream = stream;
    this.id = crypto.getRandomValues(new Uint32Array(1))[0];
    // (`x && cond ? x : false`, not `x && cond`: that gives `cond`, true, and loses x's options.)
    echoMatch = echoMatch && played ? echoMatch : false;
    doubleTalk = doubleTalk && played && readerSource && mediaDevices && typeof MediaStreamTrackProcessor === "function" ? doubleTalk : false;
    this.node = new AudioWorkletNode(ctx, "rtv-capture", { numberOfInputs: 2, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { stream: this.id, echoMatch, doubleTalk } });
    // The echo match's (and the detector's) reference: the player's output on the worklet's own
    // clock (second input).
    if (echoMatch || doubleTalk) played.connect(this.node, 0, 1);
    this.rawStream = null; // the detector's raw mic, once open
    this.rawReader = null; // its worker
    this.closed = false;
    if (doubleTalk) this.openRaw(mediaDevices, readerSource);
    this.node.port.onmessage = (e) => onFrame(e.data);
    this.holdSpeech = false; // full duplex, assistant audible: frames wait to look like speech
    this.reader = null; // the track reader's worker, while it runs
    this.fed = feed && !!readerSource && !!this.track && this.feed(readerSource);
    this.source = null;
    if (!this.fed) {
      this.source = ctx.createMediaStreamSource(stream);
      this.source.connect(this.node);
    }
    // Chromium only runs nodes connected to the destination: route it there muted.
    const sink = ctx.createGain();
    sink.gain.value = 0;
    this.node.connect(sink).connect(ctx.destination);
  }

  /** Start the worker that reads the track into the worklet until the track ends; false if it cannot. */
  feed(readerSource) {
    this.reader = this.startReader(readerSource, this.track, "track");
    return !!this.reader;
  }

  /** A worker reading `track` into the worklet, announced to it as `type` ("track" or "raw"); null if it cannot start. */
  startReader(readerSource, track, type) {
    let worker = null;
    try {
      const url = URL.createObjectURL(new Blob([readerSource], { type: "text/javascript" }));
      worker = new Worker(url, { type: "module" });
      URL.revokeObjectURL(url);
      // eslint-disable-next-line no-undef
      const processor = new MediaStreamTrackProcessor({ track, maxBufferSize: TRACK_BUFFER_CHUNKS });
      const channel = new MessageChannel();
      const running = () => this.ctx.state === "running";
      worker.postMessage({ readable: processor.readable, port: channel.port2, running: running() }, [processor.readable, channel.port2]);
      this.node.port.postMessage({ type, port: channel.port1 }, [channel.port1]);
      this.ctx.addEventListener("statechange", () => worker.postMessage({ running: running() }));
    } catch {
      if (worker) worker.terminate();
      return null; // no workers here (a CSP), or the track's stream cannot be transferred
    }
    return worker;
  }

  /** The detector's raw mic: asked for a second time with processing off, read by its own worker. */
  async openRaw(mediaDevices, readerSource) {
    let stream = null;
    try {
      stream = await mediaDevices.getUserMedia(rawMicConstraints(this.track));
    } catch {
      return; // no barge-in detection: the speech hold alone decides, as without it
    }
    if (this.closed) {
      stopStream(stream);
      return;
    }
    this.rawStream = stream;
    this.rawReader = this.startReader(readerSource, stream.getAudioTracks()[0], "raw");
  }

  /** Stop the track's reader (the track's own end stops it too), and the detector's raw mic. */
  close() {
    this.closed = true;
    if (this.reader) this.reader.terminate();
    this.reader = null;
    if (this.rawReader) this.rawReader.terminate();
    this.rawReader = null;
    stopStream(this.rawStream);
    this.rawStream = null;
  }

  get track() {
    return this.stream.getAudioTracks()[0];
  }

  /**
   * Tell the worklet whether the next frames are meant for the kernel, with the two clocks read
   * together (it stamps frames with them). With `ack`, it answers which frame was the last one
   * it numbered before this (see push-to-talk.js).
   */
  gate(send, pageTime, ack = undefined) {
    const msg = { type: "gate", send, hold: this.holdSpeech, contextTime: this.ctx.currentTime, pageTime };
    if (ack) msg.ack = ack;
    this.node.port.postMessage(msg);
  }
}

/** Stop the mic's tracks (the browser's recording indicator goes off). */
export function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}
