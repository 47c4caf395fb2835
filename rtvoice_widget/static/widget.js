var __defProp = Object.defineProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};

// lib/agents-ui.js
var CSS = `
.rtv-root .rtv-agent { border-color: var(--rtv-ai); color: var(--rtv-ai); }
.rtv-root .rtv-approvals { display: flex; flex-direction: column; gap: 6px; }
.rtv-root .rtv-approvals:empty { display: none; }
.rtv-root .rtv-approval { display: flex; align-items: center; gap: 8px; padding: 6px 8px; border: 1px solid var(--rtv-warn); border-radius: 6px; background: color-mix(in srgb, var(--rtv-warn) 10%, transparent); }
.rtv-root .rtv-approval-text { flex: 1; min-width: 0; overflow-wrap: anywhere; font-size: 13px; }
.rtv-root .rtv-approval-call { font-family: var(--jp-code-font-family, monospace); }
`;
var styled = false;
function describeCall(name, argumentsJson, max = 160) {
  let args = typeof argumentsJson === "string" ? argumentsJson : "";
  try {
    const parsed = JSON.parse(args || "{}");
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      args = Object.entries(parsed).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
    }
  } catch (_) {
  }
  if (args.length > max) args = `${args.slice(0, max - 1)}…`;
  return `${String(name)}(${args})`;
}
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}
var AgentsUI = class {
  /** `send(content)` goes to the kernel. `badge` goes in the header, `panel` near the transcript. */
  constructor(model, send) {
    this.model = model;
    this.send = send;
    this.decided = /* @__PURE__ */ new Set();
    if (!styled && typeof document !== "undefined") {
      styled = true;
      document.head.append(el("style", null, CSS));
    }
    this.badge = el("span", "rtv-badge rtv-agent");
    this.badge.title = "Active agent";
    this.panel = el("div", "rtv-approvals");
    this.panel.setAttribute("role", "region");
    this.panel.setAttribute("aria-label", "Tool calls waiting for approval");
    this.onChange = () => this.render();
    model.on("change:agent", this.onChange);
    model.on("change:approvals", this.onChange);
    this.render();
  }
  render() {
    const agent = this.model.get("agent") || "";
    this.badge.textContent = agent ? `Agent: ${agent}` : "";
    this.badge.hidden = !agent;
    const pending = this.model.get("approvals") || [];
    const ids = new Set(pending.map((r) => r.call_id));
    for (const id of [...this.decided]) if (!ids.has(id)) this.decided.delete(id);
    this.panel.replaceChildren(...pending.map((request) => this.row(request)));
  }
  row(request) {
    const text = el("span", "rtv-approval-text");
    text.append("The assistant wants to run ", el("span", "rtv-approval-call", describeCall(request.name, request.arguments)));
    const decided = this.decided.has(request.call_id);
    const button = (label, approved, primary) => {
      const b = el("button", `rtv-btn rtv-small${primary ? " rtv-primary" : ""}`, label);
      b.disabled = decided;
      b.dataset.callId = request.call_id;
      b.addEventListener("click", () => {
        this.decided.add(request.call_id);
        this.send({ type: "approval", call_id: request.call_id, approved });
        this.render();
      });
      return b;
    };
    const row = el("div", "rtv-approval");
    row.dataset.callId = request.call_id;
    row.append(text, button("Approve", true, true), button("Deny", false, false));
    return row;
  }
  destroy() {
    this.model.off("change:agent", this.onChange);
    this.model.off("change:approvals", this.onChange);
  }
};

// lib/audio-graph.js
var blobUrl = (source) => URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
var AudioGraph = class {
  /**
   * `sources`: {capture, playback} worklet source texts. `onStateChange()`: the context was
   * suspended or resumed (e.g. the browser waits for a user gesture).
   */
  constructor(sources, onStateChange) {
    this.sources = sources;
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    this.ctx.onstatechange = onStateChange;
    this.playback = null;
    this.closed = false;
  }
  /** Load both worklets and connect the player; the capture node comes with the mic. */
  async load() {
    await this.ctx.audioWorklet.addModule(blobUrl(this.sources.capture));
    await this.ctx.audioWorklet.addModule(blobUrl(this.sources.playback));
    if (this.closed) throw new Error("audio stopped while loading");
    this.playback = new AudioWorkletNode(this.ctx, "rtv-playback", { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    this.playback.connect(this.ctx.destination);
    return this;
  }
  get sampleRate() {
    return this.ctx.sampleRate;
  }
  get running() {
    return this.ctx.state === "running";
  }
  get suspended() {
    return this.ctx.state === "suspended";
  }
  resume() {
    return this.ctx.resume();
  }
  close() {
    this.closed = true;
    this.ctx.close().catch(() => {
    });
    this.playback = null;
  }
};

// lib/capture.js
var MIC_CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 }
};
var PLAYBACK_TAIL_MS = 250;
var ONSET_GUARD_MS = 600;
function gateOpen({ mode, pttHeld, status, ready, headphones, duplex = "half", playing, msSincePlayback, playingForMs = 0 }) {
  if (mode === "mute") return false;
  if (mode === "push_to_talk" && !pttHeld) return false;
  if (status !== "connected") return false;
  if (!ready) return false;
  if (headphones) return true;
  if (duplex !== "full") return !(playing || msSincePlayback < PLAYBACK_TAIL_MS);
  return !(playing && playingForMs < ONSET_GUARD_MS);
}
var NO_MIC_HERE = "This page cannot use a microphone (it needs https or localhost, and some front ends such as VS Code webviews block it). Type below instead, or open the notebook in JupyterLab in a browser.";
function micError(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return ["denied", "Microphone access was denied. Allow it for this site in the browser's address bar, then click the mic button. You can also type below."];
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return ["no_device", "No microphone was found. Connect one and click the mic button, or type below."];
  }
  return ["error", `The microphone could not start: ${err && err.message ? err.message : name}`];
}
async function openMic(mediaDevices) {
  if (!mediaDevices || !mediaDevices.getUserMedia) return { state: "unavailable", detail: NO_MIC_HERE };
  try {
    return { stream: await mediaDevices.getUserMedia(MIC_CONSTRAINTS) };
  } catch (err) {
    const [state, detail] = micError(err);
    return { state, detail };
  }
}
var TRACK_BUFFER_CHUNKS = 50;
var ECHO_MATCH_ON = () => {
  const on = globalThis.rtvEchoMatch;
  return on === true || typeof on === "object" && on !== null ? on : false;
};
var DOUBLE_TALK_ON = () => {
  const on = globalThis.rtvDoubleTalk;
  return typeof on === "object" && on !== null ? on : on !== false;
};
function rawMicConstraints(track) {
  const deviceId = track && track.getSettings ? track.getSettings().deviceId : void 0;
  return {
    audio: {
      echoCancellation: false,
      noiseSuppression: false,
      autoGainControl: false,
      channelCount: 1,
      ...deviceId ? { deviceId: { exact: deviceId } } : {}
    }
  };
}
var MIC_FROM_TRACK = () => globalThis.rtvMicFromTrack !== false && typeof MediaStreamTrackProcessor === "function";
var Capture = class {
  constructor(ctx, stream, onFrame, { feed = MIC_FROM_TRACK(), readerSource = null, played = null, echoMatch = ECHO_MATCH_ON(), doubleTalk = DOUBLE_TALK_ON(), mediaDevices = null } = {}) {
    this.ctx = ctx;
    this.stream = stream;
    this.id = crypto.getRandomValues(new Uint32Array(1))[0];
    echoMatch = echoMatch && played ? echoMatch : false;
    doubleTalk = doubleTalk && played && readerSource && mediaDevices && typeof MediaStreamTrackProcessor === "function" ? doubleTalk : false;
    this.node = new AudioWorkletNode(ctx, "rtv-capture", { numberOfInputs: 2, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: { stream: this.id, echoMatch, doubleTalk } });
    if (echoMatch || doubleTalk) played.connect(this.node, 0, 1);
    this.rawStream = null;
    this.rawReader = null;
    this.closed = false;
    if (doubleTalk) this.openRaw(mediaDevices, readerSource);
    this.node.port.onmessage = (e) => onFrame(e.data);
    this.holdSpeech = false;
    this.reader = null;
    this.fed = feed && !!readerSource && !!this.track && this.feed(readerSource);
    this.source = null;
    if (!this.fed) {
      this.source = ctx.createMediaStreamSource(stream);
      this.source.connect(this.node);
    }
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
      const processor = new MediaStreamTrackProcessor({ track, maxBufferSize: TRACK_BUFFER_CHUNKS });
      const channel = new MessageChannel();
      const running = () => this.ctx.state === "running";
      worker.postMessage({ readable: processor.readable, port: channel.port2, running: running() }, [processor.readable, channel.port2]);
      this.node.port.postMessage({ type, port: channel.port1 }, [channel.port1]);
      this.ctx.addEventListener("statechange", () => worker.postMessage({ running: running() }));
    } catch {
      if (worker) worker.terminate();
      return null;
    }
    return worker;
  }
  /** The detector's raw mic: asked for a second time with processing off, read by its own worker. */
  async openRaw(mediaDevices, readerSource) {
    let stream = null;
    try {
      stream = await mediaDevices.getUserMedia(rawMicConstraints(this.track));
    } catch {
      return;
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
  gate(send, pageTime, ack = void 0) {
    const msg = { type: "gate", send, hold: this.holdSpeech, contextTime: this.ctx.currentTime, pageTime };
    if (ack) msg.ack = ack;
    this.node.port.postMessage(msg);
  }
};
function stopStream(stream) {
  if (stream) for (const t of stream.getTracks()) t.stop();
}

// lib/clock.js
function pageNow() {
  return performance.timeOrigin + performance.now();
}
function pageTimeOf(ctx, contextTime) {
  if (!ctx) return null;
  return pageNow() - Math.max(0, (ctx.currentTime - contextTime) * 1e3);
}

// lib/echo-check.js
var ECHO_CHECK = { windowMs: 1e3, maxPlaybackMs: 5e3, passDb: 25, minPlaybackDbfs: -50, settleMs: 200 };
var dbOf = (power) => 10 * Math.log10(power + 1e-12);
var FRAME_MS = 20;
var Window = class {
  constructor() {
    this.playEnergy = 0;
    this.playMs = 0;
    this.micEnergy = 0;
    this.micFrames = 0;
  }
  /** {returnLossDb, playbackDbfs, micDbfs, measuredMs}, or null with nothing to compare. */
  figures() {
    if (!(this.playMs > 0) || !this.micFrames) return null;
    const playbackDbfs = dbOf(this.playEnergy / this.playMs);
    const micDbfs = dbOf(this.micEnergy / this.micFrames);
    return { returnLossDb: playbackDbfs - micDbfs, playbackDbfs, micDbfs, measuredMs: this.playMs };
  }
};
var EchoCheck = class {
  constructor(options = {}) {
    this.options = { ...ECHO_CHECK, ...options };
    this.reset();
  }
  /** A new mic (a new device may mean a new echo path): measure again. */
  reset() {
    this.state = "checking";
    this.total = new Window();
    this.window = new Window();
    this.best = null;
    this.result = null;
  }
  /** Playback rendered since the reset, in ms. */
  get playMs() {
    return this.total.playMs;
  }
  /** Mic frames measured since the reset. */
  get micFrames() {
    return this.total.micFrames;
  }
  /** The player rendered `ms` of audio at mean power `power` (mean square), while active. */
  playback(power, ms) {
    if (this.state !== "checking" || !(ms > 0) || !Number.isFinite(power)) return null;
    for (const w of [this.total, this.window]) {
      w.playEnergy += power * ms;
      w.playMs += ms;
    }
    return this.decide();
  }
  /** A processed mic frame's RMS while the assistant is audible. */
  mic(rms) {
    if (this.state !== "checking" || this.total.playMs < this.options.settleMs || !Number.isFinite(rms)) return null;
    for (const w of [this.total, this.window]) {
      w.micEnergy += rms * rms;
      w.micFrames++;
    }
    return this.decide();
  }
  /** Everything measured since the reset: {returnLossDb, playbackDbfs, micDbfs, measuredMs}, or null. */
  summary() {
    return this.total.figures();
  }
  /** Judge the window once it is full; the decision, or null while there is none:
   * {state, returnLossDb, playbackDbfs, micDbfs, measuredMs} (the figures of the passing
   * window, or of the best one on a fallback; measuredMs: all playback measured). */
  decide() {
    const o = this.options;
    const w = this.window;
    if (w.playMs < o.windowMs || w.micFrames < 0.5 * o.windowMs / FRAME_MS) return null;
    this.window = new Window();
    const figures = w.figures();
    if (figures.playbackDbfs < o.minPlaybackDbfs) return null;
    if (!this.best || figures.returnLossDb > this.best.returnLossDb) this.best = figures;
    if (figures.returnLossDb >= o.passDb) return this.conclude("full", figures);
    if (this.total.playMs >= o.maxPlaybackMs) return this.conclude("half", this.best);
    return null;
  }
  conclude(state, figures) {
    this.state = state;
    this.result = { state, ...figures, measuredMs: this.total.playMs };
    return this.result;
  }
};

// lib/link.js
var LinkWorker = class _LinkWorker {
  /**
   * `source`: the worker's script. `handlers`: {open(open: bool) on a real change,
   * linkFrom(stream, seq), arrived(itemId, t), overflow(buffer, count, ms)}.
   * `start()` returns null where workers are forbidden (a CSP): then Jupyter carries everything.
   */
  static start(source, info, { sampleRate, playback, capture }, handlers) {
    if (typeof Worker === "undefined" || typeof MessageChannel === "undefined") return null;
    let worker;
    try {
      const url2 = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      worker = new Worker(url2, { type: "module" });
    } catch (err) {
      return null;
    }
    const link = new _LinkWorker(worker, handlers);
    link.attach("playback", playback);
    if (capture) link.attach("capture", capture);
    const url = `${info.url}?token=${encodeURIComponent(info.token)}`;
    worker.postMessage({ type: "open", url, key: info.key, sampleRate });
    return link;
  }
  constructor(worker, handlers) {
    this.worker = worker;
    this.handlers = handlers;
    this.open = false;
    worker.onmessage = (e) => this.onMessage(e.data);
  }
  /** Connect a worklet node (`kind`: "capture" | "playback") to the worker by a port of its own. */
  attach(kind, node) {
    const channel = new MessageChannel();
    node.port.postMessage({ type: "link", port: channel.port1 }, [channel.port1]);
    this.worker.postMessage({ type: kind, port: channel.port2 }, [channel.port2]);
  }
  /** A player message that came through Jupyter: played in order with the link's. */
  fromJupyter(header, payload, t) {
    this.worker.postMessage({ type: "jupyter", header, payload, t }, payload ? [payload] : []);
  }
  onMessage(msg) {
    const h2 = this.handlers;
    if (msg.type === "overflow") h2.overflow(msg.buffer, msg.count, msg.ms);
    else if (msg.type === "arrived") h2.arrived(msg.itemId, msg.t);
    else if (msg.type === "linkFrom") h2.linkFrom(msg.stream, msg.seq);
    else if (msg.type === "open" || msg.type === "closed") {
      const open = msg.type === "open";
      if (!open) h2.closed();
      if (open === this.open) return;
      this.open = open;
      h2.open(open);
    }
  }
  terminate() {
    this.worker.terminate();
    this.open = false;
  }
};

// lib/mic-route.js
var MicRoute = class {
  /** `sendJupyter(frame)`: send `{stream, seq, t, pcm}` as a custom message. */
  constructor(sendJupyter, { keep = 50 } = {}) {
    this.sendJupyter = sendJupyter;
    this.keep = keep;
    this.captureId = 0;
    this.linkFrom = null;
    this.leftToLink = [];
    this.framesSent = 0;
  }
  /** A new capture (a new mic start) numbers from 0 again. */
  newCapture(id) {
    this.captureId = id;
    this.linkFrom = null;
    this.leftToLink = [];
  }
  /** The worker sends every frame of `stream` from `seq` on. */
  linkFromAnnounced(stream, seq) {
    if (stream === this.captureId) this.linkFrom = seq;
  }
  /** A numbered frame from the capture worklet. */
  frame(frame) {
    if (this.linkFrom !== null && frame.seq >= this.linkFrom) {
      this.leftToLink.push(frame);
      if (this.leftToLink.length > this.keep) this.leftToLink.shift();
      return;
    }
    this.send(frame);
  }
  /** The link closed: what the worker may not have got out goes through Jupyter. */
  linkClosed() {
    if (this.linkFrom === null) return;
    this.linkFrom = null;
    const left = this.leftToLink;
    this.leftToLink = [];
    for (const frame of left) this.send(frame);
  }
  reset() {
    this.linkFrom = null;
    this.leftToLink = [];
  }
  send(frame) {
    this.sendJupyter(frame);
    this.framesSent++;
  }
};

// lib/dsp.js
function pcm16ToFloat(pcm) {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
}
function toInt16(buffer) {
  let bytes;
  if (buffer instanceof ArrayBuffer) bytes = new Uint8Array(buffer);
  else if (ArrayBuffer.isView(buffer)) bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  else throw new TypeError("expected an ArrayBuffer or a view of one");
  const even = bytes.byteLength - bytes.byteLength % 2;
  const copy = new Uint8Array(even);
  copy.set(bytes.subarray(0, even));
  return new Int16Array(copy.buffer);
}
var Resampler = class {
  constructor(inRate, outRate, taps = 8) {
    if (!(inRate > 0) || !(outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {
      throw new RangeError(`sample rates must be positive integers: ${inRate} -> ${outRate}`);
    }
    const gcd = (a, b) => b === 0 ? a : gcd(b, a % b);
    const g = gcd(inRate, outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    this.up = outRate / g;
    this.down = inRate / g;
    this.cutoff = Math.min(1, outRate / inRate) * 0.92;
    this.halfWidth = Math.ceil(taps / this.cutoff);
    this.history = new Float32Array(this.halfWidth);
    this.index = this.halfWidth;
    this.phase = 0;
    this.tables = /* @__PURE__ */ new Map();
  }
  _weights(phase) {
    let table = this.tables.get(phase);
    if (table) return table;
    const w = this.halfWidth;
    table = new Float32Array(2 * w);
    let sum = 0;
    for (let j = 0; j < 2 * w; j++) {
      const x = w - 1 - j + phase / this.up;
      let value = 0;
      if (x > -w && x < w) {
        const a = Math.PI * this.cutoff * x;
        value = (x === 0 ? 1 : Math.sin(a) / a) * 0.5 * (1 + Math.cos(Math.PI * x / w));
      }
      table[j] = value;
      sum += value;
    }
    for (let j = 0; j < 2 * w; j++) table[j] /= sum;
    if (this.tables.size < 1024) this.tables.set(phase, table);
    return table;
  }
  process(input) {
    const w = this.halfWidth;
    const data = new Float32Array(this.history.length + input.length);
    data.set(this.history);
    data.set(input, this.history.length);
    const room = data.length - w - this.index;
    const out = new Float32Array(room > 0 ? Math.ceil(room * this.up / this.down) + 1 : 0);
    let n = 0;
    let index = this.index;
    let phase = this.phase;
    while (index + w < data.length) {
      const weights = this._weights(phase);
      const first = index - w + 1;
      let acc = 0;
      for (let j = 0; j < 2 * w; j++) acc += data[first + j] * weights[j];
      out[n++] = acc;
      phase += this.down;
      index += Math.floor(phase / this.up);
      phase %= this.up;
    }
    const drop = Math.max(0, Math.min(index - w + 1, data.length));
    this.history = data.slice(drop);
    this.index = index - drop;
    this.phase = phase;
    return out.subarray(0, n);
  }
};

// lib/player.js
function playedMessage(report, { flushed = false, t, ctx, timing = {} } = {}) {
  const ms = (seconds) => typeof seconds === "number" && Number.isFinite(seconds) ? seconds * 1e3 : null;
  const known = (x) => typeof x === "number" && Number.isFinite(x) ? x : null;
  return {
    type: "played",
    item_id: report.itemId,
    ms: report.ms,
    flushed,
    t,
    arrived_t: known(timing.arrivedT),
    started_t: known(timing.startedT),
    flush_arrived_t: known(timing.flushArrivedT),
    silent_t: known(timing.silentT),
    underruns: known(timing.underruns),
    output_latency_ms: ctx ? ms(ctx.outputLatency) : null,
    base_latency_ms: ctx ? ms(ctx.baseLatency) : null
  };
}

// lib/player-route.js
var MAX_PENDING = 1500;
var OverflowReporter = class {
  constructor(send, { delayMs = 1e3, setTimer = setTimeout } = {}) {
    this.send = send;
    this.delayMs = delayMs;
    this.setTimer = setTimer;
    this.due = /* @__PURE__ */ new Map();
  }
  add(buffer, count, ms) {
    const due = this.due.get(buffer);
    if (due) {
      due.count += count;
      due.ms += ms;
      return;
    }
    this.due.set(buffer, { count, ms });
    this.setTimer(() => {
      const { count: n, ms: total } = this.due.get(buffer);
      this.due.delete(buffer);
      this.send({
        type: "playback",
        state: "overflow",
        buffer,
        dropped: n,
        dropped_ms: total,
        detail: `the ${buffer} buffer was full: dropped ${Math.round(total)} ms of assistant audio`
      });
    }, this.delayMs);
  }
};
var PlayerRoute = class {
  /**
   * `send(content)`: a message to the kernel. `pageNow()`: the page clock; `pageTimeOf(t)`: a
   * context time (s) on it. `changed()`: levels or `playing` changed (the views redraw).
   * `rendered(power, ms)`: the player rendered `ms` of audio at mean square `power`.
   */
  constructor({ send, pageNow: pageNow2, pageTimeOf: pageTimeOf2, changed, rendered = () => {
  } }) {
    this.send = send;
    this.rendered = rendered;
    this.pageNow = pageNow2;
    this.pageTimeOf = pageTimeOf2;
    this.changed = changed;
    this.overflows = new OverflowReporter(send);
    this.playback = null;
    this.sampleRate = null;
    this.ctx = null;
    this.link = null;
    this.resamplers = /* @__PURE__ */ new Map();
    this.pending = [];
    this.level = 0;
    this.playing = false;
    this.lastPlaybackAt = 0;
    this.runStartedAt = null;
    this.underruns = 0;
    this.itemTimes = /* @__PURE__ */ new Map();
  }
  /** The player is up (`playback` node of context `ctx`); `replay()` then plays what waited. */
  ready(playback, ctx) {
    this.playback = playback;
    this.ctx = ctx;
    this.sampleRate = ctx.sampleRate;
    playback.port.onmessage = (e) => this.onPlayback(e.data);
  }
  replay() {
    const pending = this.pending;
    this.pending = [];
    for (const [header, buffer] of pending) this.fromJupyter(header, buffer);
  }
  stop() {
    this.playback = this.ctx = this.link = null;
    this.resamplers.clear();
    this.pending = [];
    this.level = 0;
    this.playing = false;
  }
  timesOf(itemId) {
    let times = this.itemTimes.get(itemId);
    if (!times) {
      times = { arrivedT: null, startedT: null };
      this.itemTimes.set(itemId, times);
      if (this.itemTimes.size > 64) this.itemTimes.delete(this.itemTimes.keys().next().value);
    }
    return times;
  }
  /** An item's first audio reached the page (from the link worker, or here). */
  arrived(itemId, t) {
    const times = this.timesOf(itemId);
    if (times.arrivedT === null) times.arrivedT = t;
    this.playing = true;
  }
  /** A player message that came through Jupyter (`buffer`: PCM16 for audio, else null). */
  fromJupyter(header, buffer) {
    const t = this.pageNow();
    if (this.link) {
      const payload = buffer ? toInt16(buffer).buffer : null;
      this.link.fromJupyter(header, payload, t);
      return;
    }
    if (header.type === "flush") {
      if (this.playback) this.playback.port.postMessage({ type: "flush", t });
      this.pending = [];
    } else if (header.type === "audio") {
      const times = this.timesOf(String(header.item_id));
      if (times.arrivedT === null) times.arrivedT = t;
      this.play(header, buffer);
    }
  }
  play(header, buffer) {
    if (!this.playback) {
      if (this.pending.length < MAX_PENDING) this.pending.push([header, buffer]);
      else this.overflows.add("pending", 1, buffer ? buffer.byteLength / 48 : 0);
      return;
    }
    const itemId = String(header.item_id);
    let resampler = this.resamplers.get(itemId);
    if (!resampler) {
      resampler = new Resampler(24e3, this.sampleRate);
      this.resamplers.set(itemId, resampler);
      if (this.resamplers.size > 64) this.resamplers.delete(this.resamplers.keys().next().value);
    }
    const samples = resampler.process(pcm16ToFloat(toInt16(buffer)));
    this.playing = true;
    this.playback.port.postMessage({ type: "push", itemId, samples }, [samples.buffer]);
  }
  /** How long the output has played without a break (0 before its first report of a run). */
  playingForMs(now = performance.now()) {
    return this.playing && this.runStartedAt !== null ? now - this.runStartedAt : 0;
  }
  /** What the playback worklet reports (see js/worklets/playback.js). */
  onPlayback(msg) {
    if (msg.type === "overflow") return this.overflows.add(msg.buffer, msg.count, msg.ms);
    if (msg.type === "started") {
      this.timesOf(msg.itemId).startedT = this.pageTimeOf(msg.time);
      return void 0;
    }
    if (msg.type === "played" || msg.type === "flushed") {
      const t = this.pageNow();
      this.underruns = msg.underruns;
      const flushed = msg.type === "flushed";
      for (const r of msg.reports) {
        const timing = { ...this.timesOf(r.itemId), underruns: this.underruns };
        if (flushed) Object.assign(timing, { flushArrivedT: msg.arrivedT, silentT: this.pageTimeOf(msg.silentAt) });
        this.send(playedMessage(r, { flushed, t, ctx: this.ctx, timing }));
      }
    }
    if (msg.type === "played") {
      if (msg.powerMs > 0) this.rendered(msg.power, msg.powerMs);
      this.level = msg.active ? msg.level : 0;
      this.playing = msg.active;
      this.runStartedAt = msg.active && msg.runMs >= 0 ? performance.now() - msg.runMs : null;
    } else if (msg.type === "flushed") {
      this.level = 0;
      this.playing = false;
      this.runStartedAt = null;
    }
    this.lastPlaybackAt = performance.now();
    this.changed();
    return void 0;
  }
};

// lib/push-to-talk.js
var PushToTalk = class {
  /**
   * `send(content)`: a control message to the kernel. `capture()`: the live Capture (or null)
   * and whether its context runs; `pageNow()`: the page clock.
   */
  constructor({ send, capture, pageNow: pageNow2 }) {
    this.send = send;
    this.capture = capture;
    this.pageNow = pageNow2;
    this.held = false;
  }
  /** The key went down (`true`) or up; returns whether that changed anything. */
  set(held) {
    if (this.held === held) return false;
    this.held = held;
    const { capture, running } = this.capture();
    if (held || !capture || !running) {
      this.send({ type: "control", action: held ? "ptt_start" : "ptt_end" });
      return true;
    }
    capture.gate(false, this.pageNow(), "ptt_end");
    return true;
  }
  /** The capture's answer to a gate with `ack` (after every frame numbered before it). */
  acked({ ack, stream, seq }) {
    this.send({ type: "control", action: ack, stream, through: seq });
  }
};

// lib/export.js
function transcriptText(entries) {
  const lines = [];
  for (const e of entries) {
    const text = (e.text || "").trim();
    if (!text) continue;
    const who = e.role === "assistant" ? "AI" : "You";
    lines.push(`${who}: ${text}${e.interrupted ? " [interrupted]" : ""}`);
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
var DownloadAssembler = class {
  constructor(maxOpen = 4) {
    this.maxOpen = maxOpen;
    this.open = /* @__PURE__ */ new Map();
  }
  add(msg, bytes) {
    const { id, name, mime, index, count } = msg || {};
    if (typeof id !== "string" || !Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 0 || index >= count) return null;
    let d = this.open.get(id);
    if (!d) {
      if (this.open.size >= this.maxOpen) this.open.delete(this.open.keys().next().value);
      d = { name: String(name || "download"), mime: String(mime || "application/octet-stream"), count, parts: new Array(count), received: 0 };
      this.open.set(id, d);
    }
    if (d.parts[index] === void 0) d.received++;
    d.parts[index] = bytes;
    if (d.received < d.count) return null;
    this.open.delete(id);
    return { name: d.name, mime: d.mime, parts: d.parts };
  }
};
function bytesOf(view) {
  if (!view) return new Uint8Array(0);
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}
function saveFile({ name, mime, parts }) {
  const url = URL.createObjectURL(new Blob(parts, { type: mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1e4);
}
async function copyText(text) {
  try {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (err) {
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (err) {
    ok = false;
  }
  area.remove();
  return ok;
}

// lib/state.js
var state_exports = {};
__export(state_exports, {
  CATEGORIES: () => CATEGORIES,
  CATEGORY_LABELS: () => CATEGORY_LABELS,
  EventStore: () => EventStore,
  TranscriptStore: () => TranscriptStore,
  atBottom: () => atBottom,
  formatMs: () => formatMs,
  median: () => median,
  visibleRange: () => visibleRange
});
var CATEGORIES = ["user_speech", "ai_response", "system", "error", "connection"];
var CATEGORY_LABELS = {
  user_speech: "User speech",
  ai_response: "AI response",
  system: "System",
  error: "Errors",
  connection: "Connection"
};
var EventStore = class {
  constructor(capacity = 5e3) {
    this.capacity = capacity;
    this.rows = [];
    this.counts = Object.fromEntries(CATEGORIES.map((c) => [c, 0]));
    this.total = 0;
    this.dropped = 0;
    this.lastSeq = -1;
  }
  /** Add rows (each with seq, type, category, ...); rows already seen (by seq) are ignored. */
  add(rows) {
    let added = 0;
    for (const row of rows) {
      if (typeof row.seq === "number" && row.seq <= this.lastSeq) continue;
      if (typeof row.seq === "number") this.lastSeq = row.seq;
      this.rows.push(row);
      this.total++;
      added++;
      if (row.category in this.counts) this.counts[row.category]++;
    }
    const excess = this.rows.length - this.capacity;
    if (excess > 0) {
      this.rows.splice(0, excess);
      this.dropped += excess;
    }
    return added;
  }
  /** Rows passing the filter: `categories` a Set of enabled categories, `query` a type substring. */
  filter({ categories, query = "" } = {}) {
    const q = query.trim().toLowerCase();
    return this.rows.filter(
      (row) => (!categories || categories.has(row.category)) && (!q || String(row.type).toLowerCase().includes(q))
    );
  }
};
function visibleRange({ scrollTop, viewport, count, rowHeight, expanded = -1, extra = 0, overscan = 6 }) {
  const offsetOf = (i) => i * rowHeight + (expanded >= 0 && i > expanded ? extra : 0);
  const indexAt = (y) => {
    if (expanded >= 0 && y >= offsetOf(expanded + 1)) return Math.floor((y - extra) / rowHeight);
    return Math.floor(y / rowHeight);
  };
  const height = count * rowHeight + (expanded >= 0 && expanded < count ? extra : 0);
  const first = Math.max(0, Math.min(count, indexAt(Math.max(0, scrollTop))));
  const last = Math.max(first, Math.min(count, indexAt(scrollTop + viewport) + 1));
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, last + overscan);
  return { start, end, top: offsetOf(start), height };
}
function atBottom({ scrollTop, clientHeight, scrollHeight }, slack = 8) {
  return scrollTop + clientHeight >= scrollHeight - slack;
}
var TranscriptStore = class {
  constructor(capacity = 500) {
    this.capacity = capacity;
    this.entries = /* @__PURE__ */ new Map();
  }
  apply(updates) {
    for (const u of updates) {
      if (!u || typeof u.id !== "string") continue;
      const prev = this.entries.get(u.id);
      if (prev && prev.final && !u.final && !u.interrupted) continue;
      this.entries.set(u.id, { ...prev, ...u });
    }
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value);
  }
  list() {
    return [...this.entries.values()];
  }
};
function median(values) {
  const xs = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}
function formatMs(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "–";
  return ms >= 1e3 ? `${(ms / 1e3).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

// source:worklets/capture.js
var capture_default = '// lib/dsp.js\nfunction floatToPcm16(samples) {\n  const out = new Int16Array(samples.length);\n  for (let i = 0; i < samples.length; i++) {\n    const s = samples[i];\n    const clipped = s !== s ? 0 : s < -1 ? -1 : s > 1 ? 1 : s;\n    out[i] = Math.round(clipped < 0 ? clipped * 32768 : clipped * 32767);\n  }\n  return out;\n}\nfunction pcm16ToFloat(pcm) {\n  const out = new Float32Array(pcm.length);\n  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;\n  return out;\n}\nfunction rms(samples) {\n  if (samples.length === 0) return 0;\n  let sum = 0;\n  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];\n  return Math.sqrt(sum / samples.length);\n}\nvar Resampler = class {\n  constructor(inRate, outRate, taps = 8) {\n    if (!(inRate > 0) || !(outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {\n      throw new RangeError(`sample rates must be positive integers: ${inRate} -> ${outRate}`);\n    }\n    const gcd = (a, b) => b === 0 ? a : gcd(b, a % b);\n    const g = gcd(inRate, outRate);\n    this.inRate = inRate;\n    this.outRate = outRate;\n    this.up = outRate / g;\n    this.down = inRate / g;\n    this.cutoff = Math.min(1, outRate / inRate) * 0.92;\n    this.halfWidth = Math.ceil(taps / this.cutoff);\n    this.history = new Float32Array(this.halfWidth);\n    this.index = this.halfWidth;\n    this.phase = 0;\n    this.tables = /* @__PURE__ */ new Map();\n  }\n  _weights(phase) {\n    let table = this.tables.get(phase);\n    if (table) return table;\n    const w = this.halfWidth;\n    table = new Float32Array(2 * w);\n    let sum = 0;\n    for (let j = 0; j < 2 * w; j++) {\n      const x = w - 1 - j + phase / this.up;\n      let value = 0;\n      if (x > -w && x < w) {\n        const a = Math.PI * this.cutoff * x;\n        value = (x === 0 ? 1 : Math.sin(a) / a) * 0.5 * (1 + Math.cos(Math.PI * x / w));\n      }\n      table[j] = value;\n      sum += value;\n    }\n    for (let j = 0; j < 2 * w; j++) table[j] /= sum;\n    if (this.tables.size < 1024) this.tables.set(phase, table);\n    return table;\n  }\n  process(input) {\n    const w = this.halfWidth;\n    const data = new Float32Array(this.history.length + input.length);\n    data.set(this.history);\n    data.set(input, this.history.length);\n    const room = data.length - w - this.index;\n    const out = new Float32Array(room > 0 ? Math.ceil(room * this.up / this.down) + 1 : 0);\n    let n = 0;\n    let index = this.index;\n    let phase = this.phase;\n    while (index + w < data.length) {\n      const weights = this._weights(phase);\n      const first = index - w + 1;\n      let acc = 0;\n      for (let j = 0; j < 2 * w; j++) acc += data[first + j] * weights[j];\n      out[n++] = acc;\n      phase += this.down;\n      index += Math.floor(phase / this.up);\n      phase %= this.up;\n    }\n    const drop = Math.max(0, Math.min(index - w + 1, data.length));\n    this.history = data.slice(drop);\n    this.index = index - drop;\n    this.phase = phase;\n    return out.subarray(0, n);\n  }\n};\nvar FrameChunker = class {\n  constructor(frameSamples = 480) {\n    if (!Number.isInteger(frameSamples) || frameSamples <= 0) throw new RangeError("frameSamples must be a positive integer");\n    this.frameSamples = frameSamples;\n    this.pending = new Float32Array(frameSamples);\n    this.filled = 0;\n  }\n  push(samples) {\n    const frames = [];\n    let offset = 0;\n    while (offset < samples.length) {\n      const take = Math.min(this.frameSamples - this.filled, samples.length - offset);\n      this.pending.set(samples.subarray(offset, offset + take), this.filled);\n      this.filled += take;\n      offset += take;\n      if (this.filled === this.frameSamples) {\n        frames.push(floatToPcm16(this.pending));\n        this.filled = 0;\n      }\n    }\n    return frames;\n  }\n};\nvar Framer = class {\n  constructor(rate = 0, outRate = 24e3, frameSamples = 480) {\n    this.outRate = outRate;\n    this.rate = 0;\n    this.resampler = null;\n    this.chunker = new FrameChunker(frameSamples);\n    if (rate) this.setRate(rate);\n  }\n  setRate(rate) {\n    this.rate = rate;\n    this.resampler = new Resampler(rate, this.outRate);\n  }\n  push(samples, rate) {\n    if (rate !== this.rate) this.setRate(rate);\n    return this.chunker.push(this.resampler.process(samples));\n  }\n};\n\n// lib/double-talk.js\nvar DOUBLE_TALK = {\n  rate: 16e3,\n  hopMs: 10,\n  winMs: 20,\n  fft: 512,\n  bands: 12,\n  loHz: 100,\n  hiHz: 4e3,\n  maxLagMs: 400,\n  lagLoMs: 20,\n  lagHiMs: 20,\n  decayDb: 2,\n  historyHops: 300,\n  learnEvery: 25,\n  minCorr: 0.4,\n  quantile: 0.9,\n  stepDb: 0.5,\n  marginDb: 6,\n  micFloorDb: -75,\n  playedFloorDb: -85,\n  minBands: 4,\n  needHops: 3,\n  hangHops: 30,\n  warmHops: 200,\n  tailMs: 300,\n  jitterChunks: 100\n};\nvar FLOOR_DB = -120;\nvar db = (p) => p > 1e-12 ? 10 * Math.log10(p) : FLOOR_DB;\nfunction fft(re, im) {\n  const n = re.length;\n  for (let i = 1, j = 0; i < n; i++) {\n    let bit = n >> 1;\n    for (; j & bit; bit >>= 1) j ^= bit;\n    j ^= bit;\n    if (i < j) {\n      [re[i], re[j]] = [re[j], re[i]];\n      [im[i], im[j]] = [im[j], im[i]];\n    }\n  }\n  for (let len = 2; len <= n; len <<= 1) {\n    const ang = -2 * Math.PI / len;\n    const wr = Math.cos(ang);\n    const wi = Math.sin(ang);\n    for (let i = 0; i < n; i += len) {\n      let cr = 1;\n      let ci = 0;\n      for (let k = 0; k < len / 2; k++) {\n        const a = i + k;\n        const b = a + len / 2;\n        const tr = re[b] * cr - im[b] * ci;\n        const ti = re[b] * ci + im[b] * cr;\n        re[b] = re[a] - tr;\n        im[b] = im[a] - ti;\n        re[a] += tr;\n        im[a] += ti;\n        const ncr = cr * wr - ci * wi;\n        ci = cr * wi + ci * wr;\n        cr = ncr;\n      }\n    }\n  }\n}\nfunction bandEdges({ rate, fft: size, bands, loHz, hiHz }) {\n  const edges = [];\n  for (let k = 0; k <= bands; k++) edges.push(Math.round(loHz * (hiHz / loHz) ** (k / bands) * size / rate));\n  for (let k = 1; k <= bands; k++) if (edges[k] <= edges[k - 1]) edges[k] = edges[k - 1] + 1;\n  return edges;\n}\nvar BandStream = class {\n  constructor(options = {}) {\n    this.o = { ...DOUBLE_TALK, ...options };\n    const o = this.o;\n    this.hop = Math.round(o.rate * o.hopMs / 1e3);\n    this.win = Math.round(o.rate * o.winMs / 1e3);\n    this.edges = bandEdges(o);\n    this.window = new Float32Array(this.win);\n    for (let i = 0; i < this.win; i++) this.window[i] = 0.5 - 0.5 * Math.cos(2 * Math.PI * (i + 0.5) / this.win);\n    this.buf = new Float32Array(this.win);\n    this.at = 0;\n    this.filled = 0;\n    this.sinceHop = 0;\n    let w2 = 0;\n    for (const w of this.window) w2 += w * w;\n    this.norm = 1 / w2;\n    this.re = new Float32Array(o.fft);\n    this.im = new Float32Array(o.fft);\n    this.rate = 0;\n    this.resampler = null;\n    this.count = 0;\n    this.offsets = [];\n    this.outCount = 0;\n  }\n  /** `ms` of the input never came (a reader that fell behind): its clock skips them (both the\n   * input\'s count, which places the arrivals, and the output\'s, which stamps the hops). */\n  lost(ms) {\n    if (!this.rate) return;\n    this.count += Math.round(ms * this.rate / 1e3);\n    this.outCount += Math.round(ms * this.o.rate / 1e3);\n  }\n  push(samples, rate, endTime) {\n    if (rate !== this.rate) {\n      this.rate = rate;\n      this.resampler = rate === this.o.rate ? null : new Resampler(rate, this.o.rate);\n      this.count = 0;\n      this.offsets = [];\n      this.outCount = 0;\n    }\n    this.count += samples.length;\n    this.offsets.push(endTime - this.count / rate);\n    if (this.offsets.length > this.o.jitterChunks) this.offsets.shift();\n    let base = Infinity;\n    for (const x2 of this.offsets) if (x2 < base) base = x2;\n    const x = this.resampler ? this.resampler.process(samples) : samples;\n    const out = [];\n    for (let i = 0; i < x.length; i++) {\n      this.buf[this.at] = x[i];\n      this.at = (this.at + 1) % this.win;\n      this.outCount++;\n      if (this.filled < this.win) this.filled++;\n      if (++this.sinceHop >= this.hop && this.filled >= this.win) {\n        this.sinceHop = 0;\n        out.push({ t: base + this.outCount / this.o.rate, bands: this.analyse() });\n      }\n    }\n    return out;\n  }\n  analyse() {\n    const { re, im, buf, window, edges } = this;\n    re.fill(0);\n    im.fill(0);\n    for (let i = 0; i < this.win; i++) re[i] = buf[(this.at + i) % this.win] * window[i];\n    fft(re, im);\n    const bands = new Float32Array(edges.length - 1);\n    for (let b = 0; b < bands.length; b++) {\n      let sum = 0;\n      for (let k = edges[b]; k < edges[b + 1]; k++) sum += re[k] * re[k] + im[k] * im[k];\n      bands[b] = db(sum * this.norm / (edges[b + 1] - edges[b]));\n    }\n    return bands;\n  }\n};\nvar DoubleTalk = class {\n  constructor(options = {}) {\n    this.o = { ...DOUBLE_TALK, ...options };\n    const o = this.o;\n    this.hopS = o.hopMs / 1e3;\n    this.mic = new BandStream(o);\n    this.ref = new BandStream(o);\n    this.nb = this.mic.edges.length - 1;\n    this.maxLag = Math.round(o.maxLagMs / o.hopMs);\n    this.refSize = o.historyHops + this.maxLag + 64;\n    this.refBands = new Float32Array(this.refSize * this.nb).fill(FLOOR_DB);\n    this.refHeld = new Float32Array(this.refSize * this.nb).fill(FLOOR_DB);\n    this.refLoud = new Float32Array(this.refSize).fill(FLOOR_DB);\n    this.refT0 = null;\n    this.refN = 0;\n    this.hist = [];\n    this.lag = -1;\n    this.corr = 0;\n    this.gain = new Float32Array(this.nb).fill(NaN);\n    this.noise = new Float32Array(this.nb).fill(FLOOR_DB);\n    this.run = 0;\n    this.warm = 0;\n    this.hang = 0;\n    this.sinceLearn = 0;\n    this.maxScore = 0;\n    this.hops = 0;\n  }\n  played(samples, rate, endTime) {\n    for (const h of this.ref.push(samples, rate, endTime)) {\n      if (this.refT0 === null) this.refT0 = h.t;\n      const slot = this.refN % this.refSize;\n      this.refBands.set(h.bands, slot * this.nb);\n      const prev = (this.refN + this.refSize - 1) % this.refSize * this.nb;\n      for (let b = 0; b < this.nb; b++) {\n        const held = this.refN ? this.refHeld[prev + b] - this.o.decayDb : FLOOR_DB;\n        this.refHeld[slot * this.nb + b] = Math.max(h.bands[b], held);\n      }\n      let loud = FLOOR_DB;\n      for (const v of h.bands) if (v > loud) loud = v;\n      this.refLoud[slot] = loud;\n      this.refN++;\n    }\n  }\n  lost(ms) {\n    this.mic.lost(ms);\n  }\n  /** The played hop index whose end is nearest `t` (may be out of the kept range). */\n  refIndex(t) {\n    return this.refT0 === null ? -Infinity : Math.round((t - this.refT0) / this.hopS);\n  }\n  kept(j) {\n    return j >= 0 && j < this.refN && j > this.refN - this.refSize;\n  }\n  /** Per band, the max played energy (dB, held with its decay) over the lag window before played hop `j`. */\n  expected(j, out) {\n    out.fill(FLOOR_DB);\n    const lo = Math.round(this.o.lagLoMs / this.o.hopMs);\n    const hi = Math.round(this.o.lagHiMs / this.o.hopMs);\n    for (let k = j - this.lag - hi; k <= j - this.lag + lo; k++) {\n      if (!this.kept(k)) continue;\n      const base = k % this.refSize * this.nb;\n      for (let b = 0; b < this.nb; b++) if (this.refHeld[base + b] > out[b]) out[b] = this.refHeld[base + b];\n    }\n    return out;\n  }\n  /** Whether anything was played whose echo may be in the mic at played hop `j` (the lag\n   * window, and tailMs before it); before the lag is known, whether anything was played within\n   * maxLagMs + tailMs. */\n  audible(j) {\n    const o = this.o;\n    const lag = this.lag >= 0 ? this.lag : 0;\n    const lo = this.lag >= 0 ? Math.round(o.lagLoMs / o.hopMs) : 0;\n    const back = (this.lag >= 0 ? Math.round(o.lagHiMs / o.hopMs) : this.maxLag) + Math.round(o.tailMs / o.hopMs);\n    for (let k = j - lag + lo; k >= j - lag - back; k--) if (this.kept(k) && this.refLoud[k % this.refSize] > o.playedFloorDb) return true;\n    return false;\n  }\n  heard(samples, rate, endTime) {\n    const found = [];\n    for (const h of this.mic.push(samples, rate, endTime)) {\n      const hit = this.hop(h);\n      if (hit) found.push(hit);\n    }\n    return found;\n  }\n  hop({ t, bands }) {\n    const o = this.o;\n    this.hops++;\n    const j = this.refIndex(t);\n    const audible = this.audible(j);\n    let hit = null;\n    let flagged = false;\n    if (this.lag >= 0 && audible) {\n      const exp = this.expected(j, new Float32Array(this.nb));\n      let over = 0;\n      let excess = 0;\n      const per = new Array(this.nb);\n      for (let b = 0; b < this.nb; b++) {\n        const echo = exp[b] > o.playedFloorDb && !Number.isNaN(this.gain[b]) ? exp[b] + this.gain[b] : FLOOR_DB;\n        const pred = db(10 ** (echo / 10) + 10 ** (this.noise[b] / 10));\n        const x = bands[b] - pred;\n        per[b] = Math.round(x);\n        if (x > o.marginDb && bands[b] > o.micFloorDb) {\n          over++;\n          excess += x;\n        }\n      }\n      if (over > this.maxScore) this.maxScore = over;\n      flagged = over >= o.minBands;\n      this.run = flagged ? this.run + 1 : 0;\n      if (this.warm < o.warmHops) this.warm++;\n      else if (this.run === o.needHops) hit = { t, score: over, excessDb: excess / over, lagMs: this.lag * o.hopMs, bandsDb: per, micDb: Array.from(bands, Math.round) };\n      if (!flagged && this.hang === 0) {\n        for (let b = 0; b < this.nb; b++) {\n          if (exp[b] <= o.playedFloorDb || Number.isNaN(this.gain[b])) continue;\n          const r = bands[b] - exp[b];\n          this.gain[b] += o.stepDb * (r < this.gain[b] ? o.quantile - 1 : o.quantile);\n        }\n      }\n    } else {\n      this.run = 0;\n    }\n    if (flagged) this.hang = o.hangHops;\n    else if (this.hang > 0) this.hang--;\n    if (!audible && this.hang === 0) {\n      for (let b = 0; b < this.nb; b++) this.noise[b] += 0.5 * (bands[b] < this.noise[b] ? -0.9 : 0.1);\n    }\n    this.hist.push([j, bands, !flagged && this.hang === 0]);\n    if (this.hist.length > o.historyHops) this.hist.shift();\n    if (++this.sinceLearn >= o.learnEvery) {\n      this.sinceLearn = 0;\n      this.learn();\n    }\n    return hit;\n  }\n  /** The lag (and, the first time, the gains) from the history. */\n  learn() {\n    const o = this.o;\n    const rows = this.hist.filter(([j, , usable]) => usable && this.kept(j - this.maxLag) && this.kept(j));\n    if (rows.length < o.historyHops / 3) return;\n    const playedRows = rows.filter(([j]) => this.refLoud[(j - Math.round(this.lag >= 0 ? this.lag : 0)) % this.refSize] > o.playedFloorDb);\n    if (playedRows.length < rows.length / 4 && this.lag < 0) return;\n    let best = -1;\n    let bestCorr = -Infinity;\n    const n = rows.length;\n    for (let L = 0; L <= this.maxLag; L++) {\n      let total = 0;\n      for (let b = 0; b < this.nb; b++) {\n        let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;\n        for (const [j, bands] of rows) {\n          const x = bands[b];\n          const y = this.refBands[(j - L) % this.refSize * this.nb + b];\n          sx += x;\n          sy += y;\n          sxx += x * x;\n          syy += y * y;\n          sxy += x * y;\n        }\n        const vx = sxx - sx * sx / n;\n        const vy = syy - sy * sy / n;\n        if (vx > 1e-6 && vy > 1e-6) total += (sxy - sx * sy / n) / Math.sqrt(vx * vy);\n      }\n      const c = total / this.nb;\n      if (c > bestCorr) {\n        bestCorr = c;\n        best = L;\n      }\n    }\n    if (bestCorr < o.minCorr) return;\n    this.corr = bestCorr;\n    const first = this.lag < 0;\n    this.lag = best;\n    if (!first) return;\n    const exp = new Float32Array(this.nb);\n    const ratios = Array.from({ length: this.nb }, () => []);\n    for (const [j, bands] of rows) {\n      this.expected(j, exp);\n      for (let b = 0; b < this.nb; b++) if (exp[b] > o.playedFloorDb) ratios[b].push(bands[b] - exp[b]);\n    }\n    for (let b = 0; b < this.nb; b++) {\n      const r = ratios[b].sort((a, c) => a - c);\n      this.gain[b] = r.length >= 10 ? r[Math.min(r.length - 1, Math.floor(o.quantile * r.length))] : NaN;\n    }\n    let top = NaN;\n    for (const g of this.gain) if (!Number.isNaN(g) && (Number.isNaN(top) || g > top)) top = g;\n    for (let b = 0; b < this.nb; b++) if (Number.isNaN(this.gain[b])) this.gain[b] = Number.isNaN(top) ? 0 : top;\n  }\n  /** What it learnt, for a log: {lagMs, corr, gainDb: [...], maxScore since the last call}. */\n  state() {\n    const s = {\n      lagMs: this.lag < 0 ? -1 : this.lag * this.o.hopMs,\n      corr: Math.round(this.corr * 100) / 100,\n      gainDb: Array.from(this.gain, (g) => Number.isNaN(g) ? null : Math.round(g)),\n      maxScore: this.maxScore\n    };\n    this.maxScore = 0;\n    return s;\n  }\n};\n\n// lib/echo-match.js\nvar ECHO_MATCH = { rate: 4e3, windowMs: 80, maxLagMs: 400, threshold: 0.5, floorDbfs: -60 };\nvar Decimator = class {\n  constructor(fromRate, toRate) {\n    this.step = fromRate / toRate;\n    this.sum = 0;\n    this.n = 0;\n    this.due = this.step;\n  }\n  /** The output samples these inputs complete (a plain array). */\n  process(samples) {\n    const out = [];\n    for (let i = 0; i < samples.length; i++) {\n      this.sum += samples[i];\n      this.n++;\n      if (this.n >= this.due) {\n        out.push(this.sum / this.n);\n        this.sum = 0;\n        this.due += this.step - this.n;\n        this.n = 0;\n      }\n    }\n    return out;\n  }\n};\nvar Ring = class {\n  constructor(size) {\n    this.buf = new Float32Array(size);\n    this.end = 0;\n  }\n  push(samples) {\n    for (let i = 0; i < samples.length; i++) this.buf[(this.end + i) % this.buf.length] = samples[i];\n    this.end += samples.length;\n  }\n  /** The last `n` samples (zeros before the first push), oldest first. */\n  latest(n) {\n    const out = new Float32Array(n);\n    for (let i = 0; i < n; i++) {\n      const k = this.end - n + i;\n      if (k >= 0) out[i] = this.buf[k % this.buf.length];\n    }\n    return out;\n  }\n};\nfunction bestMatch(mic, ref, floor = 0) {\n  const w = mic.length;\n  let em = 0;\n  for (let i = 0; i < w; i++) em += mic[i] * mic[i];\n  let best = { score: 0, lag: -1 };\n  if (em === 0) return best;\n  const maxLag = ref.length - w;\n  let start = ref.length - w;\n  let er = 0;\n  for (let i = 0; i < w; i++) er += ref[start + i] * ref[start + i];\n  for (let lag = 0; lag <= maxLag; lag++) {\n    start = ref.length - w - lag;\n    if (lag > 0) er += ref[start] * ref[start] - ref[start + w] * ref[start + w];\n    if (er / w <= floor) continue;\n    let num = 0;\n    for (let i = 0; i < w; i++) num += mic[i] * ref[start + i];\n    const score = Math.abs(num) / Math.sqrt(em * er);\n    if (score > best.score) best = { score, lag };\n  }\n  return best;\n}\nvar EchoMatch = class {\n  constructor(micRate, refRate, options = {}) {\n    this.options = { ...ECHO_MATCH, ...options };\n    const { rate, windowMs, maxLagMs, floorDbfs } = this.options;\n    this.w = Math.round(rate * windowMs / 1e3);\n    this.refLen = this.w + Math.round(rate * maxLagMs / 1e3);\n    this.micDown = new Decimator(micRate, rate);\n    this.refDown = new Decimator(refRate, rate);\n    this.mic = new Ring(this.w);\n    this.ref = new Ring(this.refLen);\n    this.floor = 10 ** (floorDbfs / 10);\n    this.last = { score: 0, lag: -1 };\n  }\n  played(samples) {\n    this.ref.push(this.refDown.process(samples));\n  }\n  heard(samples) {\n    this.mic.push(this.micDown.process(samples));\n  }\n  /** The lag (ms) of the latest look\'s best match (-1: none). */\n  get lagMs() {\n    return this.last.lag < 0 ? -1 : this.last.lag * 1e3 / this.options.rate;\n  }\n  echo() {\n    this.last = bestMatch(this.mic.latest(this.w), this.ref.latest(this.refLen), this.floor);\n    return this.last.score >= this.options.threshold;\n  }\n};\n\n// lib/speech-hold.js\nvar SPEECH_HOLD = { window: 15, need: 10, floorDbfs: -50 };\nvar SPEECH_HOLD_MATCHED = { window: 5, need: 4, floorDbfs: -50 };\nvar SpeechHold = class {\n  constructor(options = {}) {\n    this.options = { ...SPEECH_HOLD, ...options };\n    this.floor = 10 ** (this.options.floorDbfs / 20);\n    this.held = [];\n    this.released = false;\n  }\n  /** Loud enough to count (before any echo match): what the match is worth computing for. */\n  loud(level) {\n    return level >= this.floor;\n  }\n  /**\n   * A frame (anything) with its RMS `level`, and whether it matched the played signal (`echo`,\n   * then it does not count however loud): the frames to send now, oldest first.\n   */\n  push(frame, level, echo = false) {\n    if (this.released) return [frame];\n    this.held.push([frame, level >= this.floor && !echo]);\n    if (this.held.length > this.options.window) this.held.shift();\n    if (this.held.filter(([, loud]) => loud).length < this.options.need) return [];\n    this.released = true;\n    const out = this.held.map(([f]) => f);\n    this.held = [];\n    return out;\n  }\n  /** The assistant is no longer audible: start over (held frames are dropped). */\n  end() {\n    const dropped = this.held.length;\n    this.held = [];\n    this.released = false;\n    return dropped;\n  }\n};\n\n// worklets/capture.js\nvar RAW_ONSET_FRAMES = 10;\nvar RtvCapture = class extends AudioWorkletProcessor {\n  constructor(options) {\n    super();\n    this.stream = options.processorOptions.stream;\n    this.framer = new Framer(sampleRate);\n    this.link = null;\n    this.gate = null;\n    this.seq = 0;\n    const match = options.processorOptions.echoMatch;\n    this.match = match ? new EchoMatch(24e3, sampleRate, typeof match === "object" ? match : {}) : null;\n    this.hold = new SpeechHold(this.match ? SPEECH_HOLD_MATCHED : {});\n    const dtd = options.processorOptions.doubleTalk;\n    this.dtd = dtd ? new DoubleTalk(typeof dtd === "object" ? dtd : {}) : null;\n    this.dtdAct = !!dtd && !(typeof dtd === "object" && dtd.act === false);\n    this.rawFramer = new Framer();\n    this.rawRecent = [];\n    this.rawSending = false;\n    this.dtdHops = 0;\n    this.silence = new Float32Array(128);\n    this.fedRate = 0;\n    this.port.onmessage = (e) => {\n      const msg = e.data;\n      if (msg && msg.type === "track") msg.port.onmessage = (m) => this.onTrack(m.data);\n      else if (msg && msg.type === "raw") msg.port.onmessage = (m) => this.onRaw(m.data);\n      else if (msg && msg.type === "link") this.link = msg.port;\n      else if (msg && msg.type === "gate") {\n        this.gate = msg;\n        if (msg.ack) this.port.postMessage({ ack: msg.ack, stream: this.stream, seq: this.seq - 1 });\n      } else this.onTrack(msg);\n    };\n  }\n  /** Context time `t` (s) on the page clock (ms), by the latest gate\'s pair of readings; null before one. */\n  pageTime(t) {\n    return this.gate ? this.gate.pageTime + (t - this.gate.contextTime) * 1e3 : null;\n  }\n  /** A message of the track\'s reader (see the contract above). */\n  onTrack(msg) {\n    if (msg && msg.type === "pcm") this.fed(msg);\n    else if (msg && msg.type === "lost") this.lost(msg.ms);\n  }\n  /** A message of the raw mic\'s reader (the double-talk detector\'s; same contract as the track\'s). */\n  onRaw(msg) {\n    if (!this.dtd || !msg) return;\n    if (msg.type === "lost") {\n      this.dtd.lost(msg.ms);\n      if (this.rawSending) this.seq += Math.round(msg.ms / 20);\n    }\n    if (msg.type !== "pcm") return;\n    const held = this.dtdAct && this.gate && this.gate.send && this.gate.hold;\n    if (held) this.rawFrames(msg);\n    else this.rawRecent = [];\n    const hits = this.dtd.heard(msg.samples, msg.rate, currentTime);\n    const now = this.pageTime(currentTime);\n    if (hits.length && held && !this.rawSending && !this.hold.released) {\n      this.rawSending = true;\n      const onset = this.rawRecent.splice(0);\n      for (const f of onset) this.emit(f.frame, f.t, f.level);\n      this.port.postMessage({ bargeIn: { t: now, hopT: this.pageTime(hits[0].t), onsetMs: onset.length * 20 } });\n    }\n    const report = ++this.dtdHops >= 50;\n    if (!hits.length && !report) return;\n    this.dtdHops = 0;\n    this.port.postMessage({ dtd: hits.map((h) => ({ ...h, t: now, hopT: this.pageTime(h.t) })), state: this.dtd.state() });\n  }\n  /** The raw mic framed like the processed one (held frames only): sent while rawSending, else kept for an onset. */\n  rawFrames(msg) {\n    const t = this.pageTime(currentTime);\n    for (const frame of this.rawFramer.push(msg.samples, msg.rate)) {\n      const level = rms(pcm16ToFloat(frame));\n      if (this.rawSending) {\n        this.emit(frame, t, level);\n        continue;\n      }\n      this.rawRecent.push({ frame, t, level });\n      if (this.rawRecent.length > RAW_ONSET_FRAMES) this.rawRecent.shift();\n    }\n  }\n  process(inputs) {\n    const played = inputs[1] && inputs[1][0];\n    if (this.dtd) this.dtd.played(played || this.silence, sampleRate, currentTime + (played || this.silence).length / sampleRate);\n    if (this.match && played) this.match.played(played);\n    if (this.fedRate) return true;\n    const channel = inputs[0] && inputs[0][0];\n    if (!channel) return true;\n    this.take(channel, sampleRate, currentTime + channel.length / sampleRate);\n    return true;\n  }\n  /** Mic audio from the track itself: framed now, stamped as captured now. */\n  fed(msg) {\n    this.fedRate = msg.rate;\n    this.take(msg.samples, msg.rate, currentTime);\n  }\n  /** `ms` of the track\'s audio never arrived (see the contract above). */\n  lost(ms) {\n    const gate = this.gate;\n    if (gate && gate.send && !gate.hold) this.seq += Math.round(ms / 20);\n  }\n  /** Samples of the mic at `rate`, the last one captured at context time `end` (s). */\n  take(samples, rate, end) {\n    const frames = this.framer.push(samples, rate);\n    for (const frame of frames) {\n      const samples2 = pcm16ToFloat(frame);\n      const level = rms(samples2);\n      if (this.match) this.match.heard(samples2);\n      const gate = this.gate;\n      if (!gate || !gate.send || !gate.hold) {\n        this.hold.end();\n        this.rawSending = false;\n      }\n      if (!gate || !gate.send) {\n        this.port.postMessage({ level, seq: null });\n        continue;\n      }\n      const t = this.pageTime(end);\n      if (!gate.hold) {\n        this.emit(frame, t, level);\n        continue;\n      }\n      if (this.rawSending) {\n        this.port.postMessage({ level, seq: null });\n        continue;\n      }\n      const echo = !!this.match && !this.hold.released && this.hold.loud(level) && this.match.echo();\n      const ready = this.hold.push({ frame, t, level }, level, echo);\n      if (!ready.length) this.port.postMessage(this.match ? { level, seq: null, match: this.match.last.score, lag: this.match.lagMs, echo } : { level, seq: null });\n      for (const f of ready) this.emit(f.frame, f.t, f.level);\n    }\n  }\n  emit(frame, t, level) {\n    const meta = { stream: this.stream, seq: this.seq++, t };\n    if (this.link) {\n      const copy = frame.buffer.slice(0);\n      this.link.postMessage({ ...meta, pcm: copy }, [copy]);\n    }\n    this.port.postMessage({ ...meta, level, pcm: frame.buffer }, [frame.buffer]);\n  }\n};\nregisterProcessor("rtv-capture", RtvCapture);\n';

// source:worklets/playback.js
var playback_default = '// lib/player.js\nvar PlaybackQueue = class {\n  constructor(sampleRate2, { prebufferMs = 0, fadeMs = 5, underrunStepMs = 40, maxPrebufferMs = 300, maxQueuedMs = 12e4 } = {}) {\n    if (!(sampleRate2 > 0)) throw new RangeError("sampleRate must be positive");\n    this.sampleRate = sampleRate2;\n    this.maxQueued = Math.round(maxQueuedMs * sampleRate2 / 1e3);\n    this.dropped = 0;\n    this.droppedSamples = 0;\n    this.prebuffer = Math.round(prebufferMs * sampleRate2 / 1e3);\n    this.underrunStep = Math.round(underrunStepMs * sampleRate2 / 1e3);\n    this.maxPrebuffer = Math.max(this.prebuffer, Math.round(maxPrebufferMs * sampleRate2 / 1e3));\n    this.underruns = 0;\n    this.ranDry = null;\n    this.flushing = false;\n    this.frame = 0;\n    this.startedAt = [];\n    this.fade = Math.max(1, Math.round(fadeMs * sampleRate2 / 1e3));\n    this.chunks = [];\n    this.queued = 0;\n    this.playedSamples = /* @__PURE__ */ new Map();\n    this.started = /* @__PURE__ */ new Set();\n    this.waiting = true;\n    this.waited = 0;\n    this.fadeOutLeft = 0;\n    this.level = 0;\n    this.lastItem = null;\n  }\n  push(itemId, samples) {\n    if (samples.length === 0) return;\n    const room = this.maxQueued - this.queued;\n    if (samples.length > room) {\n      this.dropped++;\n      this.droppedSamples += samples.length - Math.max(0, room);\n      if (room <= 0) return;\n      samples = samples.subarray(0, room);\n    }\n    if (this.ranDry !== null) {\n      if (this.ranDry === itemId) {\n        this.underruns++;\n        this.prebuffer = Math.min(this.maxPrebuffer, this.prebuffer + this.underrunStep);\n      }\n      this.ranDry = null;\n    }\n    this.flushing = false;\n    this.chunks.push({ itemId, samples, offset: 0 });\n    this.queued += samples.length;\n  }\n  /** Audio dropped by the cap since the last call: `{count, ms}`. */\n  takeDropped() {\n    const dropped = { count: this.dropped, ms: this.droppedSamples * 1e3 / this.sampleRate };\n    this.dropped = 0;\n    this.droppedSamples = 0;\n    return dropped;\n  }\n  bufferedMs() {\n    return this.queued * 1e3 / this.sampleRate;\n  }\n  played(itemId) {\n    return (this.playedSamples.get(itemId) || 0) * 1e3 / this.sampleRate;\n  }\n  /** Whether audio is audible now or queued to be. */\n  get active() {\n    return this.queued > 0;\n  }\n  /** Drop queued audio (all of it) and return [{itemId, ms}] for the items that had audio. */\n  flush() {\n    const touched = new Set(this.lastItem === null ? [] : [this.lastItem]);\n    for (const c of this.chunks) touched.add(c.itemId);\n    let keep = this.waiting ? 0 : this.fade;\n    const kept = [];\n    for (const chunk of this.chunks) {\n      if (keep <= 0) break;\n      const take = Math.min(keep, chunk.samples.length - chunk.offset);\n      kept.push({ itemId: chunk.itemId, samples: chunk.samples.subarray(chunk.offset, chunk.offset + take), offset: 0 });\n      keep -= take;\n    }\n    this.chunks = kept;\n    this.queued = kept.reduce((n, c) => n + c.samples.length, 0);\n    this.fadeOutLeft = this.queued;\n    this.ranDry = null;\n    this.flushing = this.queued > 0;\n    this.waiting = this.queued === 0;\n    this.waited = 0;\n    const tail = /* @__PURE__ */ new Map();\n    for (const c of kept) tail.set(c.itemId, (tail.get(c.itemId) || 0) + c.samples.length);\n    return [...touched].map((itemId) => ({\n      itemId,\n      ms: ((this.playedSamples.get(itemId) || 0) + (tail.get(itemId) || 0)) * 1e3 / this.sampleRate\n    }));\n  }\n  /** Fill `out` (one channel) and return the number of samples that carried audio. */\n  render(out) {\n    const written = this._fill(out);\n    this.frame += out.length;\n    return written;\n  }\n  /** Take the items that started playing since the last call: [{itemId, frame}]. */\n  takeStarted() {\n    const started = this.startedAt;\n    this.startedAt = [];\n    return started;\n  }\n  _fill(out) {\n    out.fill(0);\n    if (this.waiting) {\n      if (this.queued === 0) {\n        this.waited = 0;\n        this.level = 0;\n        return 0;\n      }\n      this.waited += out.length;\n      if (this.queued < this.prebuffer && this.waited < this.prebuffer) {\n        this.level = 0;\n        return 0;\n      }\n      this.waiting = false;\n      this.waited = 0;\n    }\n    let written = 0;\n    let energy = 0;\n    while (written < out.length && this.chunks.length > 0) {\n      const chunk = this.chunks[0];\n      const take = Math.min(out.length - written, chunk.samples.length - chunk.offset);\n      const playedBefore = this.playedSamples.get(chunk.itemId) || 0;\n      for (let i = 0; i < take; i++) {\n        let gain = 1;\n        const nth = playedBefore + i;\n        if (nth < this.fade) gain = nth / this.fade;\n        if (this.fadeOutLeft > 0) {\n          gain *= this.fadeOutLeft / this.fade;\n          this.fadeOutLeft--;\n        }\n        const s = chunk.samples[chunk.offset + i] * gain;\n        out[written + i] = s;\n        energy += s * s;\n      }\n      if (playedBefore === 0) this.startedAt.push({ itemId: chunk.itemId, frame: this.frame + written });\n      this.started.add(chunk.itemId);\n      this.lastItem = chunk.itemId;\n      this.playedSamples.set(chunk.itemId, playedBefore + take);\n      chunk.offset += take;\n      written += take;\n      this.queued -= take;\n      if (chunk.offset >= chunk.samples.length) this.chunks.shift();\n    }\n    if (this.queued === 0) {\n      this.waiting = true;\n      if (written > 0 && !this.flushing) this.ranDry = this.lastItem;\n      this.flushing = false;\n    }\n    this.level = written > 0 ? Math.sqrt(energy / written) : 0;\n    return written;\n  }\n};\nvar PlayedReporter = class {\n  constructor(sampleRate2, intervalMs = 66) {\n    this.interval = Math.max(1, Math.round(intervalMs * sampleRate2 / 1e3));\n    this.since = 0;\n    this.changed = false;\n    this.last = /* @__PURE__ */ new Map();\n  }\n  /** After rendering a block of `frames` samples, `rendered` of them audio: the reports due now. */\n  tick(frames, queue, rendered) {\n    this.since += frames;\n    if (rendered > 0) this.changed = true;\n    if (!this.changed || this.since < this.interval && queue.active) return [];\n    this.since = 0;\n    this.changed = false;\n    const due = [];\n    for (const [itemId] of queue.playedSamples) {\n      const ms = queue.played(itemId);\n      if (this.last.get(itemId) !== ms) {\n        this.last.set(itemId, ms);\n        due.push({ itemId, ms });\n      }\n    }\n    return due;\n  }\n  /** Remember what a flush already reported so it is not sent twice. */\n  noteReported(reports) {\n    for (const r of reports) this.last.set(r.itemId, r.ms);\n  }\n};\n\n// worklets/playback.js\nvar RESUME_GAP_MS = 100;\nvar RtvPlayback = class extends AudioWorkletProcessor {\n  constructor() {\n    super();\n    this.queue = new PlaybackQueue(sampleRate, { fadeMs: 5 });\n    this.reporter = new PlayedReporter(sampleRate, 66);\n    this.energy = 0;\n    this.energySamples = 0;\n    this.runFrames = 0;\n    this.gapFrames = Infinity;\n    this.overflowReportAt = 0;\n    const onMessage = (e) => {\n      const msg = e.data;\n      if (msg.type === "push") this.queue.push(msg.itemId, msg.samples);\n      else if (msg.type === "flush") {\n        const reports = this.queue.flush();\n        this.reporter.noteReported(reports);\n        const silentAt = currentTime + this.queue.queued / sampleRate;\n        this.port.postMessage({ type: "flushed", reports, underruns: this.queue.underruns, silentAt, arrivedT: msg.t });\n      } else if (msg.type === "link") msg.port.onmessage = onMessage;\n    };\n    this.port.onmessage = onMessage;\n  }\n  process(inputs, outputs) {\n    const out = outputs[0][0];\n    const blockFrame = this.queue.frame;\n    const rendered = this.queue.render(out);\n    if (rendered > 0) {\n      for (let i = 0; i < out.length; i++) this.energy += out[i] * out[i];\n      this.energySamples += out.length;\n      if (this.gapFrames >= RESUME_GAP_MS * sampleRate / 1e3) this.runFrames = 0;\n      this.runFrames += out.length;\n      this.gapFrames = 0;\n    } else this.gapFrames += out.length;\n    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);\n    for (const { itemId, frame } of this.queue.takeStarted()) {\n      this.port.postMessage({ type: "started", itemId, time: currentTime + (frame - blockFrame) / sampleRate });\n    }\n    const reports = this.reporter.tick(out.length, this.queue, rendered);\n    if (reports.length) {\n      const power = this.energySamples ? this.energy / this.energySamples : 0;\n      const powerMs = this.energySamples / sampleRate * 1e3;\n      this.energy = this.energySamples = 0;\n      const runMs = this.runFrames / sampleRate * 1e3;\n      this.port.postMessage({ type: "played", reports, level: this.queue.level, active: this.queue.active, underruns: this.queue.underruns, power, powerMs, runMs });\n    }\n    if (this.queue.dropped > 0 && currentTime >= this.overflowReportAt) {\n      this.overflowReportAt = currentTime + 1;\n      const { count, ms } = this.queue.takeDropped();\n      this.port.postMessage({ type: "overflow", buffer: "playback", count, ms });\n    }\n    return true;\n  }\n};\nregisterProcessor("rtv-playback", RtvPlayback);\n';

// source:worklets/link-worker.js
var link_worker_default = '// lib/dsp.js\nfunction pcm16ToFloat(pcm) {\n  const out = new Float32Array(pcm.length);\n  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;\n  return out;\n}\nfunction toInt16(buffer) {\n  let bytes;\n  if (buffer instanceof ArrayBuffer) bytes = new Uint8Array(buffer);\n  else if (ArrayBuffer.isView(buffer)) bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);\n  else throw new TypeError("expected an ArrayBuffer or a view of one");\n  const even = bytes.byteLength - bytes.byteLength % 2;\n  const copy = new Uint8Array(even);\n  copy.set(bytes.subarray(0, even));\n  return new Int16Array(copy.buffer);\n}\nvar Resampler = class {\n  constructor(inRate, outRate, taps = 8) {\n    if (!(inRate > 0) || !(outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {\n      throw new RangeError(`sample rates must be positive integers: ${inRate} -> ${outRate}`);\n    }\n    const gcd = (a, b) => b === 0 ? a : gcd(b, a % b);\n    const g = gcd(inRate, outRate);\n    this.inRate = inRate;\n    this.outRate = outRate;\n    this.up = outRate / g;\n    this.down = inRate / g;\n    this.cutoff = Math.min(1, outRate / inRate) * 0.92;\n    this.halfWidth = Math.ceil(taps / this.cutoff);\n    this.history = new Float32Array(this.halfWidth);\n    this.index = this.halfWidth;\n    this.phase = 0;\n    this.tables = /* @__PURE__ */ new Map();\n  }\n  _weights(phase) {\n    let table = this.tables.get(phase);\n    if (table) return table;\n    const w = this.halfWidth;\n    table = new Float32Array(2 * w);\n    let sum = 0;\n    for (let j = 0; j < 2 * w; j++) {\n      const x = w - 1 - j + phase / this.up;\n      let value = 0;\n      if (x > -w && x < w) {\n        const a = Math.PI * this.cutoff * x;\n        value = (x === 0 ? 1 : Math.sin(a) / a) * 0.5 * (1 + Math.cos(Math.PI * x / w));\n      }\n      table[j] = value;\n      sum += value;\n    }\n    for (let j = 0; j < 2 * w; j++) table[j] /= sum;\n    if (this.tables.size < 1024) this.tables.set(phase, table);\n    return table;\n  }\n  process(input) {\n    const w = this.halfWidth;\n    const data = new Float32Array(this.history.length + input.length);\n    data.set(this.history);\n    data.set(input, this.history.length);\n    const room = data.length - w - this.index;\n    const out = new Float32Array(room > 0 ? Math.ceil(room * this.up / this.down) + 1 : 0);\n    let n = 0;\n    let index = this.index;\n    let phase = this.phase;\n    while (index + w < data.length) {\n      const weights = this._weights(phase);\n      const first = index - w + 1;\n      let acc = 0;\n      for (let j = 0; j < 2 * w; j++) acc += data[first + j] * weights[j];\n      out[n++] = acc;\n      phase += this.down;\n      index += Math.floor(phase / this.up);\n      phase %= this.up;\n    }\n    const drop = Math.max(0, Math.min(index - w + 1, data.length));\n    this.history = data.slice(drop);\n    this.index = index - drop;\n    this.phase = phase;\n    return out.subarray(0, n);\n  }\n};\n\n// lib/handover.js\nvar PlayerHandover = class {\n  constructor(deliver, { maxHeld = 1e3 } = {}) {\n    this.deliver = deliver;\n    this.maxHeld = maxHeld;\n    this.released = 0;\n    this.held = [];\n    this.dropped = 0;\n    this.droppedMs = 0;\n  }\n  fromJupyter(header, payload, t) {\n    if (header.type !== "player_link") return this.deliver(header, payload, t);\n    if (!(header.conn > this.released)) return void 0;\n    this.released = header.conn;\n    const waiting = this.held;\n    this.held = [];\n    for (const entry of waiting) {\n      if (entry[0] <= this.released) this.deliver(entry[1], entry[2], entry[3]);\n      else this.held.push(entry);\n    }\n    return void 0;\n  }\n  fromLink(conn2, header, payload, t) {\n    if (conn2 <= this.released) return this.deliver(header, payload, t);\n    this.held.push([conn2, header, payload, t]);\n    if (this.held.length > this.maxHeld) {\n      let oldest = this.held.findIndex((entry) => entry[1].type !== "flush");\n      if (oldest < 0) oldest = 0;\n      const [, dropped, bytes] = this.held.splice(oldest, 1)[0];\n      this.dropped++;\n      if (dropped.type === "audio" && bytes) this.droppedMs += bytes.byteLength / 48;\n    }\n    return void 0;\n  }\n  /** Drops since the last call: `{count, ms}` (ms of 24 kHz PCM16 audio). */\n  takeDropped() {\n    const dropped = { count: this.dropped, ms: this.droppedMs };\n    this.dropped = 0;\n    this.droppedMs = 0;\n    return dropped;\n  }\n};\nvar LinkSender = class {\n  constructor(send, announce, capacity = 250) {\n    this.send = send;\n    this.announce = announce;\n    this.capacity = capacity;\n    this.open = false;\n    this.unsent = [];\n    this.announced = null;\n  }\n  frame(f) {\n    if (this.open) return this.sendNow(f);\n    this.unsent.push(f);\n    if (this.unsent.length > this.capacity) this.unsent.shift();\n    return void 0;\n  }\n  opened() {\n    this.open = true;\n    const waiting = this.unsent;\n    this.unsent = [];\n    for (const f of waiting) this.sendNow(f);\n  }\n  closed() {\n    this.open = false;\n    this.announced = null;\n  }\n  sendNow(f) {\n    if (this.announced !== f.stream) {\n      this.announced = f.stream;\n      this.announce(f.stream, f.seq);\n    }\n    this.send(f);\n  }\n};\n\n// worklets/link-worker.js\nvar ws = null;\nvar verified = false;\nvar conn = 0;\nvar url = null;\nvar key = null;\nvar playback = null;\nvar sampleRate = 48e3;\nvar resamplers = /* @__PURE__ */ new Map();\nvar HEADER = 24;\nvar decoder = new TextDecoder();\nvar pageNow = () => performance.timeOrigin + performance.now();\nfunction toPlayer(header, payload, t) {\n  if (!playback) return;\n  if (header.type === "flush") {\n    playback.postMessage({ type: "flush", t });\n    return;\n  }\n  if (header.type !== "audio") return;\n  const itemId = String(header.item_id);\n  let resampler = resamplers.get(itemId);\n  if (!resampler) {\n    postMessage({ type: "arrived", itemId, t });\n    resampler = new Resampler(24e3, sampleRate);\n    resamplers.set(itemId, resampler);\n    if (resamplers.size > 64) resamplers.delete(resamplers.keys().next().value);\n  }\n  const samples = resampler.process(pcm16ToFloat(toInt16(payload)));\n  playback.postMessage({ type: "push", itemId, samples }, [samples.buffer]);\n}\nvar player = new PlayerHandover(toPlayer);\nsetInterval(() => {\n  const { count, ms } = player.takeDropped();\n  if (count) postMessage({ type: "overflow", buffer: "handover", count, ms });\n}, 1e3);\nvar sender = new LinkSender(\n  ({ stream, seq, t, pcm }) => {\n    const message = new ArrayBuffer(HEADER + pcm.byteLength);\n    const view = new DataView(message);\n    view.setFloat64(0, t, true);\n    view.setFloat64(8, pageNow(), true);\n    view.setUint32(16, stream, true);\n    view.setUint32(20, seq, true);\n    new Uint8Array(message, HEADER).set(new Uint8Array(pcm));\n    ws.send(message);\n  },\n  (stream, seq) => postMessage({ type: "linkFrom", stream, seq })\n);\nfunction fromKernel(data) {\n  const t = pageNow();\n  const view = new DataView(data);\n  const length = view.getUint16(0, true);\n  const header = JSON.parse(decoder.decode(new Uint8Array(data, 2, length)));\n  if (header.type === "hello") {\n    if (header.key !== key) return ws.close();\n    verified = true;\n    conn = header.conn;\n    postMessage({ type: "open" });\n    sender.opened();\n  } else if (verified) player.fromLink(conn, header, new Uint8Array(data, 2 + length), t);\n}\nfunction connect() {\n  ws = new WebSocket(url);\n  ws.binaryType = "arraybuffer";\n  ws.onmessage = (e) => {\n    if (e.data instanceof ArrayBuffer) fromKernel(e.data);\n  };\n  ws.onclose = () => {\n    ws = null;\n    verified = false;\n    sender.closed();\n    postMessage({ type: "closed" });\n    setTimeout(connect, 2e3);\n  };\n}\nonmessage = (e) => {\n  const msg = e.data;\n  if (msg.type === "open") {\n    url = msg.url;\n    key = msg.key;\n    sampleRate = msg.sampleRate;\n    connect();\n  } else if (msg.type === "capture") msg.port.onmessage = (m) => sender.frame(m.data);\n  else if (msg.type === "playback") playback = msg.port;\n  else if (msg.type === "jupyter") player.fromJupyter(msg.header, msg.payload, msg.t);\n};\n';

// source:worklets/track-reader.js
var track_reader_default = '// lib/dsp.js\nfunction lostMs(expectedUs, timestampUs) {\n  if (expectedUs === null || expectedUs === void 0) return 0;\n  const ms = (timestampUs - expectedUs) / 1e3;\n  return ms >= 10 ? ms : 0;\n}\n\n// worklets/track-reader.js\nvar running = true;\nonmessage = async (e) => {\n  const msg = e.data;\n  if (typeof msg.running === "boolean") running = msg.running;\n  if (!msg.readable) return;\n  const reader = msg.readable.getReader();\n  const port = msg.port;\n  let expected = null;\n  for (; ; ) {\n    let chunk;\n    try {\n      chunk = await reader.read();\n    } catch {\n      break;\n    }\n    if (chunk.done) break;\n    const data = chunk.value;\n    try {\n      const lost = lostMs(expected, data.timestamp);\n      expected = data.timestamp + data.duration;\n      if (!running) continue;\n      if (lost) port.postMessage({ type: "lost", ms: lost });\n      const samples = new Float32Array(data.numberOfFrames);\n      data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });\n      port.postMessage({ type: "pcm", samples, rate: data.sampleRate }, [samples.buffer]);\n    } finally {\n      data.close();\n    }\n  }\n  port.close();\n  close();\n};\n';

// widget.css
var widget_default = `/* rtvoice-widget. Colours come from JupyterLab's theme variables (light and dark), with
   fallbacks for front ends that do not define them. Everything is scoped under .rtv-root. */

.rtv-root {
  --rtv-bg: var(--jp-layout-color1, #fff);
  --rtv-bg2: var(--jp-layout-color2, #f3f4f6);
  --rtv-bg3: var(--jp-layout-color3, #e5e7eb);
  --rtv-fg: var(--jp-ui-font-color1, #1f2328);
  --rtv-fg2: var(--jp-ui-font-color2, #59636e);
  --rtv-border: var(--jp-border-color2, #d8dee4);
  --rtv-accent: var(--jp-brand-color1, #1976d2);
  --rtv-accent-fg: var(--jp-ui-inverse-font-color1, #fff);
  --rtv-ok: var(--jp-success-color1, #2e7d32);
  --rtv-warn: var(--jp-warn-color1, #ef6c00);
  --rtv-err: var(--jp-error-color1, #d32f2f);
  --rtv-user: #1976d2;
  --rtv-ai: #7b1fa2;
  --rtv-system: #607d8b;
  --rtv-connection: #00897b;
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: var(--jp-ui-font-size1, 13px);
  color: var(--rtv-fg);
  background: var(--rtv-bg);
  border: 1px solid var(--rtv-border);
  border-radius: 8px;
  padding: 12px;
  display: flex;
  flex-direction: column;
  gap: 10px;
  max-width: 1100px;
  box-sizing: border-box;
  outline: none;
}
.rtv-root *, .rtv-root *::before, .rtv-root *::after { box-sizing: border-box; }
.rtv-root [hidden] { display: none !important; }
.rtv-root h3 { margin: 0; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: 0.06em; color: var(--rtv-fg2); }

/* header */
.rtv-header { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.rtv-title { display: flex; align-items: center; gap: 8px; font-size: 15px; }
.rtv-status-text { color: var(--rtv-fg2); font-size: 13px; }
.rtv-dot { width: 10px; height: 10px; border-radius: 50%; background: var(--rtv-fg2); opacity: 0.6; }
.rtv-root[data-status="connected"] .rtv-dot { background: var(--rtv-ok); opacity: 1; box-shadow: 0 0 0 3px color-mix(in srgb, var(--rtv-ok) 25%, transparent); }
.rtv-root[data-status="connecting"] .rtv-dot,
.rtv-root[data-status="reconnecting"] .rtv-dot { background: var(--rtv-warn); opacity: 1; animation: rtv-pulse 1s infinite; }
.rtv-root[data-status="error"] .rtv-dot { background: var(--rtv-err); opacity: 1; }
@keyframes rtv-pulse { 50% { opacity: 0.35; } }
.rtv-header-meta { display: flex; align-items: center; gap: 8px; flex: 1; min-width: 0; color: var(--rtv-fg2); }
.rtv-badge { padding: 2px 8px; border-radius: 10px; background: var(--rtv-bg2); border: 1px solid var(--rtv-border); font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 360px; }
.rtv-model { font-family: var(--jp-code-font-family, ui-monospace, monospace); font-size: 12px; }

/* buttons and inputs */
.rtv-root .rtv-btn { display: inline-flex; align-items: center; gap: 6px; border: 1px solid var(--rtv-border); background: var(--rtv-bg2); color: var(--rtv-fg); border-radius: 6px; padding: 6px 14px; font: inherit; cursor: pointer; }
.rtv-root .rtv-btn:hover:not(:disabled) { border-color: var(--rtv-accent); }
.rtv-root .rtv-btn:disabled { opacity: 0.45; cursor: default; }
.rtv-root .rtv-btn svg { width: 14px; height: 14px; fill: currentColor; }
.rtv-root .rtv-primary { background: var(--rtv-accent); border-color: var(--rtv-accent); color: var(--rtv-accent-fg); font-weight: 600; }
.rtv-root .rtv-small { padding: 3px 10px; font-size: 12px; }
.rtv-root .rtv-icon-btn { padding: 6px 10px; }
.rtv-root .rtv-input { font: inherit; color: var(--rtv-fg); background: var(--jp-layout-color0, var(--rtv-bg)); border: 1px solid var(--rtv-border); border-radius: 6px; padding: 6px 8px; min-width: 0; }
.rtv-root .rtv-input:focus { outline: 2px solid color-mix(in srgb, var(--rtv-accent) 45%, transparent); outline-offset: -1px; }
.rtv-row { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.rtv-muted, .rtv-hint { color: var(--rtv-fg2); font-size: 12px; }
.rtv-error-text { color: var(--rtv-err); }

/* notice line */
.rtv-notice { display: flex; align-items: center; gap: 10px; padding: 8px 12px; border-radius: 6px; border-left: 3px solid var(--rtv-accent); background: color-mix(in srgb, var(--rtv-accent) 10%, var(--rtv-bg)); }
.rtv-notice[data-kind="warn"] { border-left-color: var(--rtv-warn); background: color-mix(in srgb, var(--rtv-warn) 12%, var(--rtv-bg)); }
.rtv-notice[data-kind="error"] { border-left-color: var(--rtv-err); background: color-mix(in srgb, var(--rtv-err) 12%, var(--rtv-bg)); }
.rtv-notice-text { flex: 1; }

/* layout */
.rtv-grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(260px, 2fr); gap: 10px; }
@container (max-width: 700px) { .rtv-grid { grid-template-columns: 1fr; } }
@media (max-width: 760px) { .rtv-grid { grid-template-columns: 1fr; } }
.rtv-panel { border: 1px solid var(--rtv-border); border-radius: 6px; padding: 10px; display: flex; flex-direction: column; gap: 10px; min-width: 0; background: var(--rtv-bg); }

/* voice controls */
.rtv-controls { display: flex; gap: 16px; align-items: center; }
.rtv-root .rtv-mic-wrap { display: flex; flex-direction: column; align-items: center; gap: 6px; width: 112px; }
.rtv-root .rtv-mic { appearance: none; padding: 0; outline: none; width: 64px; height: 64px; border-radius: 50%; border: 2px solid var(--rtv-border); background: var(--rtv-bg2); color: var(--rtv-fg2); cursor: pointer; display: grid; place-items: center; touch-action: none; user-select: none; transition: background 0.15s, box-shadow 0.15s; }
.rtv-root .rtv-mic:focus-visible { box-shadow: 0 0 0 3px color-mix(in srgb, var(--rtv-accent) 45%, transparent); }
.rtv-root .rtv-mic svg { width: 28px; height: 28px; fill: currentColor; }
.rtv-root .rtv-mic[data-state="continuous"], .rtv-root .rtv-mic[data-state="push_to_talk"] { border-color: var(--rtv-accent); color: var(--rtv-accent); }
.rtv-root .rtv-mic[data-state="continuous"] { box-shadow: 0 0 0 4px color-mix(in srgb, var(--rtv-accent) 20%, transparent); }
.rtv-root .rtv-mic[data-state="talking"] { background: var(--rtv-accent); color: var(--rtv-accent-fg); border-color: var(--rtv-accent); box-shadow: 0 0 0 6px color-mix(in srgb, var(--rtv-accent) 30%, transparent); }
.rtv-root .rtv-mic[data-state="waiting"] { border-style: dashed; opacity: 0.7; }
.rtv-root .rtv-mic[data-state="muted"] { color: var(--rtv-warn); border-color: var(--rtv-warn); }
.rtv-root .rtv-mic[data-state="denied"], .rtv-root .rtv-mic[data-state="no_device"], .rtv-root .rtv-mic[data-state="error"], .rtv-root .rtv-mic[data-state="unavailable"] { color: var(--rtv-err); border-color: var(--rtv-err); }
.rtv-root .rtv-mic-label { font-size: 12px; color: var(--rtv-fg2); text-align: center; min-height: 2.4em; }
.rtv-control-stack { display: flex; flex-direction: column; gap: 8px; flex: 1; min-width: 0; }
.rtv-segmented { display: inline-flex; border: 1px solid var(--rtv-border); border-radius: 6px; overflow: hidden; align-self: flex-start; }
.rtv-root .rtv-seg { font: inherit; font-size: 12px; border: 0; border-right: 1px solid var(--rtv-border); background: var(--rtv-bg); color: var(--rtv-fg); padding: 5px 12px; cursor: pointer; }
.rtv-root .rtv-seg:last-child { border-right: 0; }
.rtv-root .rtv-seg.rtv-active { background: var(--rtv-accent); color: var(--rtv-accent-fg); }
.rtv-meters { display: flex; flex-direction: column; gap: 4px; }
.rtv-meter-row { display: grid; grid-template-columns: 24px 1fr; align-items: center; gap: 6px; font-size: 11px; color: var(--rtv-fg2); }
.rtv-meter { height: 6px; border-radius: 3px; background: color-mix(in srgb, var(--rtv-fg) 8%, transparent); overflow: hidden; }
.rtv-meter-fill { height: 100%; width: 0; background: var(--rtv-user); transition: width 60ms linear; }
.rtv-meter-fill.rtv-ai { background: var(--rtv-ai); }
.rtv-check { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--rtv-fg2); cursor: pointer; }
.rtv-icon svg { width: 14px; height: 14px; fill: currentColor; display: block; }

/* transcript */
.rtv-transcript { height: 220px; overflow-y: auto; display: flex; flex-direction: column; gap: 6px; padding: 4px 2px; }
.rtv-empty { color: var(--rtv-fg2); margin: auto; font-size: 12px; }
.rtv-msg { max-width: 85%; padding: 6px 10px; border-radius: 10px; background: var(--rtv-bg2); line-height: 1.4; white-space: pre-wrap; overflow-wrap: anywhere; }
.rtv-msg.rtv-user { align-self: flex-end; background: color-mix(in srgb, var(--rtv-user) 14%, var(--rtv-bg)); border-bottom-right-radius: 3px; }
.rtv-msg.rtv-assistant { align-self: flex-start; background: color-mix(in srgb, var(--rtv-ai) 12%, var(--rtv-bg)); border-bottom-left-radius: 3px; }
.rtv-msg-role { font-size: 10px; font-weight: 700; text-transform: uppercase; letter-spacing: 0.06em; color: var(--rtv-fg2); margin-bottom: 2px; }
.rtv-partial .rtv-msg-text { opacity: 0.7; font-style: italic; }
.rtv-interrupted { border: 1px dashed var(--rtv-warn); }
.rtv-msg-flag { font-size: 10px; color: var(--rtv-warn); text-transform: uppercase; letter-spacing: 0.05em; margin-top: 2px; }
.rtv-text-row { display: flex; gap: 6px; }
.rtv-text-row .rtv-input { flex: 1; }
.rtv-export { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 6px 0; }
.rtv-export-note, .rtv-export-label { font-size: 12px; }
.rtv-export-label { margin-left: 6px; }

/* side: tabs, stats, settings */
.rtv-tabs { display: flex; gap: 4px; border-bottom: 1px solid var(--rtv-border); }
.rtv-root .rtv-tab { font: inherit; font-size: 12px; border: 0; border-bottom: 2px solid transparent; background: transparent; color: var(--rtv-fg2); padding: 4px 10px 6px; cursor: pointer; }
.rtv-root .rtv-tab.rtv-active { color: var(--rtv-fg); border-bottom-color: var(--rtv-accent); font-weight: 600; }
.rtv-stats { display: flex; flex-direction: column; gap: 10px; }
.rtv-stat-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.rtv-stat { background: var(--rtv-bg2); border-radius: 6px; padding: 6px 8px; }
.rtv-stat-value { font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
.rtv-stat-label { font-size: 11px; color: var(--rtv-fg2); }
.rtv-cat-table { display: grid; gap: 2px; }
.rtv-cat-line { display: grid; grid-template-columns: 12px 1fr auto; align-items: center; gap: 6px; font-size: 12px; }
.rtv-cat-n { font-variant-numeric: tabular-nums; color: var(--rtv-fg2); }
.rtv-settings { display: flex; flex-direction: column; gap: 8px; }
.rtv-field-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.rtv-field { display: flex; flex-direction: column; gap: 3px; }
.rtv-field-label { font-size: 11px; color: var(--rtv-fg2); }
.rtv-instructions { resize: vertical; min-height: 70px; font-size: 12px; }

/* category colours */
.rtv-swatch { width: 8px; height: 8px; border-radius: 2px; background: var(--rtv-system); flex: none; }
.rtv-cat-user_speech .rtv-swatch { background: var(--rtv-user); }
.rtv-cat-ai_response .rtv-swatch { background: var(--rtv-ai); }
.rtv-cat-system .rtv-swatch { background: var(--rtv-system); }
.rtv-cat-error .rtv-swatch { background: var(--rtv-err); }
.rtv-cat-connection .rtv-swatch { background: var(--rtv-connection); }

/* events panel */
.rtv-events-head { display: flex; align-items: center; gap: 10px; }
.rtv-events-head h3 { margin-right: auto; }
.rtv-events-tools { display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
.rtv-chips { display: flex; gap: 6px; flex-wrap: wrap; flex: 1; }
.rtv-root .rtv-chip { display: inline-flex; align-items: center; gap: 6px; font: inherit; font-size: 12px; padding: 3px 10px; border-radius: 14px; border: 1px solid var(--rtv-border); background: transparent; color: var(--rtv-fg2); cursor: pointer; opacity: 0.6; }
.rtv-root .rtv-chip.rtv-on { opacity: 1; color: var(--rtv-fg); background: var(--rtv-bg2); }
.rtv-root .rtv-chip-count { font-variant-numeric: tabular-nums; background: var(--rtv-bg3); border-radius: 8px; padding: 0 6px; font-size: 11px; }
.rtv-search { width: 180px; }
.rtv-events-scroll { position: relative; height: 260px; overflow-y: auto; border: 1px solid var(--rtv-border); border-radius: 6px; background: var(--jp-layout-color0, var(--rtv-bg)); font-family: var(--jp-code-font-family, ui-monospace, monospace); font-size: 12px; contain: strict; }
.rtv-events-spacer { position: relative; }
.rtv-events-window { position: absolute; left: 0; right: 0; top: 0; }
.rtv-event { height: 24px; display: grid; grid-template-columns: 8px 58px 60px minmax(120px, 300px) 1fr; align-items: center; gap: 8px; padding: 0 8px; border-bottom: 1px solid color-mix(in srgb, var(--rtv-border) 50%, transparent); cursor: pointer; white-space: nowrap; }
.rtv-event:hover, .rtv-event.rtv-expanded { background: var(--rtv-bg2); }
.rtv-ev-time { color: var(--rtv-fg2); text-align: right; font-variant-numeric: tabular-nums; }
.rtv-ev-source { color: var(--rtv-fg2); font-size: 11px; }
.rtv-ev-type, .rtv-ev-text { overflow: hidden; text-overflow: ellipsis; }
.rtv-ev-text { color: var(--rtv-fg2); }
.rtv-cat-error .rtv-ev-type { color: var(--rtv-err); }
.rtv-event-detail { margin: 0; padding: 8px 12px 8px 82px; max-height: 240px; overflow: auto; background: var(--rtv-bg2); border-bottom: 1px solid var(--rtv-border); white-space: pre-wrap; overflow-wrap: anywhere; font-size: 11px; cursor: text; }
`;

// widget.js
var ICONS = {
  mic: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 1 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11z"/></svg>',
  micOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M19 11a7 7 0 0 1-1.2 3.9l-1.5-1.5A5 5 0 0 0 17 11zM15 5v5.2L9 4.2A3 3 0 0 1 15 5zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.4 2.6l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.4-1.4L19.7 21l1.3-1.3z"/></svg>',
  stop: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="6" y="6" width="12" height="12" rx="2"/></svg>',
  send: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 20.5 21 12 3 3.5V10l12 2-12 2z"/></svg>',
  headphones: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3a9 9 0 0 0-9 9v7a2 2 0 0 0 2 2h2v-8H5v-1a7 7 0 0 1 14 0v1h-2v8h2a2 2 0 0 0 2-2v-7a9 9 0 0 0-9-9z"/></svg>'
};
var STATUS_TEXT = {
  disconnected: "Disconnected",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  error: "Error"
};
var MIC_TEXT = {
  off: "Mic off",
  starting: "Starting mic…",
  live: "Listening",
  waiting: "Not listening yet",
  denied: "Mic access denied",
  no_device: "No microphone",
  unavailable: "Mic unavailable here",
  suspended: "Audio paused",
  elsewhere: "Mic in another view",
  error: "Mic error"
};
var libs = { state: state_exports };
function addStyles() {
  if (typeof document === "undefined" || document.getElementById("rtvoice-widget-css")) return;
  const style = document.createElement("style");
  style.id = "rtvoice-widget-css";
  style.textContent = widget_default;
  document.head.append(style);
}
var engines = /* @__PURE__ */ new Map();
var viewCounter = 0;
var pageId = Math.random().toString(36).slice(2, 10);
var Engine = class {
  constructor(model, libs2) {
    this.model = model;
    this.libs = libs2;
    this.events = new libs2.state.EventStore(5e3);
    this.transcript = new libs2.state.TranscriptStore(500);
    this.views = /* @__PURE__ */ new Map();
    this.mic = "off";
    this.micDetail = "";
    this.graph = null;
    this.stream = null;
    this.capture = null;
    this.micLevel = 0;
    this.player = new PlayerRoute({
      send: (content) => this.send(content),
      pageNow,
      pageTimeOf: (t) => pageTimeOf(this.ctx, t),
      changed: () => this.notify("levels"),
      rendered: (power, ms) => {
        if (this.measuring()) this.decided(this.echo.playback(power, ms));
        else if (this.monitoring()) this.replyEcho.playback(power, ms);
      }
    });
    this.echo = new EchoCheck();
    this.replyEcho = new EchoCheck({ windowMs: Infinity });
    this.micRoute = new MicRoute(({ stream, seq, t, pcm }) => this.send({ type: "audio", stream, seq, t }, [pcm]));
    this.ptt = new PushToTalk({
      send: (content) => this.send(content),
      capture: () => ({ capture: this.capture, running: !!this.graph && this.graph.running }),
      pageNow
    });
    this.linkInfo = null;
    this.downloads = new DownloadAssembler();
    this.link = null;
  }
  // What the views read.
  get ctx() {
    return this.graph ? this.graph.ctx : null;
  }
  get playing() {
    return this.player.playing;
  }
  /** On speakers: "full" once the echo check passed, "checking" until it decides, else "half". */
  get duplex() {
    if (!this.model.get("full_duplex")) return "half";
    return this.echo.state;
  }
  /** Whether the echo check is measuring now: on speakers, mic open, the assistant audible. */
  measuring() {
    const m = this.model;
    return !m.get("headphones") && m.get("full_duplex") && this.echo.state === "checking" && !!this.capture && this.player.playing;
  }
  /** Whether the echo of each reply is being measured: full duplex on speakers, assistant audible. */
  monitoring() {
    const m = this.model;
    return !m.get("headphones") && m.get("full_duplex") && this.echo.state === "full" && !!this.capture && this.player.playing;
  }
  /** A run of playback ended: report how much of it the mic heard (the kernel logs `echo.measured`). */
  reportReplyEcho() {
    const r = this.replyEcho.summary();
    this.replyEcho.reset();
    if (!r || r.measuredMs < 1e3) return;
    this.send({
      type: "echo",
      return_loss_db: r.returnLossDb,
      playback_dbfs: r.playbackDbfs,
      mic_dbfs: r.micDbfs,
      measured_ms: r.measuredMs
    });
  }
  /** The echo check decided (`result` from EchoCheck, or null while it has not): tell the kernel. */
  decided(result) {
    if (!result) return;
    this.send({
      type: "duplex",
      state: result.state,
      return_loss_db: result.returnLossDb,
      playback_dbfs: result.playbackDbfs,
      mic_dbfs: result.micDbfs,
      measured_ms: result.measuredMs
    });
    this.notify("mic");
  }
  get pttHeld() {
    return this.ptt.held;
  }
  get levels() {
    return { mic: this.micLevel, ai: this.player.level };
  }
  get framesSent() {
    return this.micRoute.framesSent;
  }
  send(content, buffers) {
    this.model.send(content, void 0, buffers);
  }
  notify(part) {
    for (const view of this.views.values()) view.update(part);
  }
  /** Whether one of this page's views is the widget's mic owner. */
  ownsMic() {
    return this.views.has(this.model.get("_mic_owner"));
  }
  // kernel -> browser messages
  onMessage(msg, buffers) {
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "audio":
        if (buffers && buffers.length) this.toPlayer(msg, buffers[0]);
        break;
      case "flush":
      case "player_link":
        this.toPlayer(msg, null);
        break;
      case "events":
        if (msg.reset) this.events = new this.libs.state.EventStore(5e3);
        if (typeof msg.rows_json === "string") {
          const rows = JSON.parse(msg.rows_json);
          if (Array.isArray(rows)) this.events.add(rows);
        }
        this.notify("events");
        break;
      case "mic_link":
        if (typeof msg.url === "string" && typeof msg.token === "string" && typeof msg.key === "string") {
          this.linkInfo = { url: msg.url, token: msg.token, key: msg.key };
          this.startLink();
        }
        break;
      case "download": {
        const file = this.downloads.add(msg, bytesOf(buffers && buffers[0]));
        if (file) saveFile(file);
        break;
      }
      case "transcript":
        if (msg.reset) this.transcript = new this.libs.state.TranscriptStore(500);
        if (Array.isArray(msg.entries)) this.transcript.apply(msg.entries);
        this.notify("transcript");
        break;
    }
  }
  setMic(state, detail = "", report = true, extra = {}) {
    this.mic = state;
    this.micDetail = detail;
    if (report) this.send({ type: "mic", state, detail, ...extra });
    this.notify("mic");
  }
  /** Start audio in this page (called from a user gesture when possible). */
  async startAudio() {
    if (this.graph || this.mic === "starting") return;
    this.setMic("starting", "", false);
    try {
      this.graph = new AudioGraph({ capture: capture_default, playback: playback_default }, () => this.checkSuspended());
      await this.graph.load();
      this.player.ready(this.graph.playback, this.graph.ctx);
      this.startLink();
      this.player.replay();
    } catch (err) {
      this.stopAudio(false);
      this.setMic("error", `Audio could not start: ${err && err.message ? err.message : err}`);
      return;
    }
    this.setMic("waiting", "", false);
    this.maybeStartMic();
  }
  /** Open the mic if audio is up, the session is ready and nothing else holds it back. */
  maybeStartMic() {
    const m = this.model;
    const idle = this.mic === "waiting" || this.mic === "suspended" && !this.stream;
    if (this.graph && idle && m.get("ready") && m.get("status") === "connected" && this.ownsMic()) this.startMic();
  }
  async startMic() {
    this.setMic("starting", "", false);
    const opened = await openMic(typeof navigator !== "undefined" ? navigator.mediaDevices : void 0);
    if (!opened.stream) {
      this.setMic(opened.state, opened.detail);
      return;
    }
    this.stream = opened.stream;
    if (!this.graph) return;
    this.capture = new Capture(this.graph.ctx, this.stream, (frame) => this.onFrame(frame), { played: this.graph.playback, readerSource: track_reader_default, mediaDevices: navigator.mediaDevices });
    this.echo.reset();
    this.micRoute.newCapture(this.capture.id);
    const track = this.capture.track;
    if (track) track.onended = () => this.setMic("no_device", "The microphone was disconnected. Reconnect it and click the mic button.");
    this.setMic("live", track ? track.label : "", true, { reads: this.capture.fed ? "track" : "graph" });
    this.checkSuspended();
    if (this.link) this.link.attach("capture", this.capture.node);
  }
  /** Start the audio-link worker, once the player exists and the kernel said where the link is. */
  startLink() {
    if (this.link || !this.linkInfo || !this.player.playback) return;
    this.link = LinkWorker.start(link_worker_default, this.linkInfo, {
      sampleRate: this.graph.sampleRate,
      playback: this.player.playback,
      capture: this.capture ? this.capture.node : null
    }, {
      overflow: (buffer, count, ms) => this.player.overflows.add(buffer, count, ms),
      arrived: (itemId, t) => this.player.arrived(itemId, t),
      linkFrom: (stream, seq) => this.micRoute.linkFromAnnounced(stream, seq),
      closed: () => this.micRoute.linkClosed(),
      open: (open) => this.send({ type: "mic", state: open ? "link_open" : "link_closed" })
    });
    this.player.link = this.link;
  }
  checkSuspended() {
    if (!this.graph) return;
    if (this.graph.suspended) this.setMic("suspended", "The browser paused audio until you interact with the page. Click to resume.");
    else if (this.graph.running && this.mic === "suspended") {
      this.setMic(this.stream ? "live" : "waiting", "", !!this.stream);
      this.maybeStartMic();
    }
  }
  async resume() {
    if (this.graph) await this.graph.resume();
    this.checkSuspended();
  }
  stopAudio(report = true) {
    stopStream(this.stream);
    if (this.capture) this.capture.close();
    if (this.link) this.link.terminate();
    this.link = null;
    this.micRoute.reset();
    if (this.graph) this.graph.close();
    this.graph = this.stream = this.capture = null;
    this.player.stop();
    this.micLevel = 0;
    if (this.mic !== "off") this.setMic("off", "", report);
    this.notify("levels");
  }
  /** Whether a captured frame should go to the kernel now. */
  shouldSend() {
    const m = this.model;
    return gateOpen({
      mode: m.get("mode"),
      pttHeld: this.ptt.held,
      status: m.get("status"),
      ready: m.get("ready"),
      headphones: m.get("headphones"),
      duplex: this.duplex,
      playing: this.player.playing,
      msSincePlayback: performance.now() - this.player.lastPlaybackAt,
      playingForMs: this.player.playingForMs()
    });
  }
  onFrame(frame) {
    if (!this.capture) return;
    if (frame.ack) {
      this.ptt.acked(frame);
      return;
    }
    if (frame.bargeIn) {
      this.send({ type: "barge_in", t: frame.bargeIn.t, onset_ms: frame.bargeIn.onsetMs });
      return;
    }
    if (frame.dtd) {
      const log = globalThis.rtvDoubleTalkLog;
      if (Array.isArray(log)) log.push([Date.now(), frame.dtd, frame.state]);
      return;
    }
    this.micLevel = frame.level;
    if (frame.match !== void 0 && Array.isArray(globalThis.rtvEchoMatchLog)) globalThis.rtvEchoMatchLog.push([Date.now(), frame.level, frame.match, frame.echo, frame.lag]);
    if (this.measuring()) this.decided(this.echo.mic(frame.level));
    else if (this.monitoring()) this.replyEcho.mic(frame.level);
    else if (!this.player.playing && this.replyEcho.playMs > 0) this.reportReplyEcho();
    this.notify("levels");
    const m = this.model;
    this.capture.holdSpeech = !m.get("headphones") && this.duplex === "full" && m.get("mode") === "continuous" && this.player.playing;
    this.capture.gate(this.shouldSend(), pageNow());
    if (frame.seq === null) return;
    this.micRoute.frame(frame);
  }
  /** A player message that came through Jupyter: played in the view that holds the mic. */
  toPlayer(header, buffer) {
    if (!this.ownsMic()) return;
    this.player.fromJupyter(header, buffer);
  }
  pushToTalk(held) {
    if (this.ptt.set(held)) this.notify("mic");
  }
};
function h(tag, attrs = {}, ...children) {
  const el2 = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el2.className = v;
    else if (k === "text") el2.textContent = v;
    else if (k === "icon") el2.innerHTML = ICONS[v];
    else if (k.startsWith("on")) el2.addEventListener(k.slice(2), v);
    else el2.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el2.append(c);
  return el2;
}
function fmtSeconds(ms) {
  return typeof ms === "number" ? (ms / 1e3).toFixed(2) : "";
}
var ROW_HEIGHT = 24;
var View = class {
  constructor(model, engine, el2) {
    this.model = model;
    this.engine = engine;
    this.el = el2;
    this.id = `${pageId}-${++viewCounter}`;
    this.filters = new Set(engine.libs.state.CATEGORIES);
    this.query = "";
    this.follow = true;
    this.expanded = null;
    this.extra = 0;
    this.pending = /* @__PURE__ */ new Set();
    this.frame = 0;
    this.waitStart = null;
    this.waitTicker = 0;
    this.build();
  }
  build() {
    const { CATEGORIES: CATEGORIES2, CATEGORY_LABELS: CATEGORY_LABELS2 } = this.engine.libs.state;
    const m = this.model;
    this.statusDot = h("span", { class: "rtv-dot" });
    this.statusText = h("span", { class: "rtv-status-text" });
    this.backendBadge = h("span", { class: "rtv-badge" });
    this.modelText = h("span", { class: "rtv-model" });
    this.connectBtn = h("button", { class: "rtv-btn rtv-primary", onclick: () => this.toggleConnect() });
    this.agentsUI = new AgentsUI(m, (content) => this.engine.send(content));
    const header = h(
      "div",
      { class: "rtv-header" },
      h("div", { class: "rtv-title" }, this.statusDot, h("strong", { text: "Voice chat" }), this.statusText),
      h("div", { class: "rtv-header-meta" }, this.agentsUI.badge, this.backendBadge, this.modelText),
      this.connectBtn
    );
    this.noticeText = h("span", { class: "rtv-notice-text" });
    this.noticeAction = h("button", { class: "rtv-btn rtv-small", onclick: () => this.noticeClick() });
    this.notice = h("div", { class: "rtv-notice", role: "status" }, this.noticeText, this.noticeAction);
    this.micBtn = h("button", { class: "rtv-mic", title: "Microphone", "aria-label": "Microphone" });
    this.micBtn.addEventListener("pointerdown", (e) => this.micDown(e));
    this.micBtn.addEventListener("pointerup", () => this.micUp());
    this.micBtn.addEventListener("pointerleave", () => this.micUp());
    this.micLabel = h("div", { class: "rtv-mic-label" });
    this.modeButtons = {};
    const modes = h("div", { class: "rtv-segmented", role: "radiogroup", "aria-label": "Mic mode" });
    for (const [mode, label] of [["continuous", "Continuous"], ["push_to_talk", "Push to talk"], ["mute", "Mute"]]) {
      const b = h("button", { class: "rtv-seg", text: label, role: "radio", onclick: () => this.setTrait("mode", mode) });
      this.modeButtons[mode] = b;
      modes.append(b);
    }
    this.micMeter = h("div", { class: "rtv-meter-fill" });
    this.aiMeter = h("div", { class: "rtv-meter-fill rtv-ai" });
    const meters = h(
      "div",
      { class: "rtv-meters" },
      h("div", { class: "rtv-meter-row" }, h("span", { text: "You" }), h("div", { class: "rtv-meter" }, this.micMeter)),
      h("div", { class: "rtv-meter-row" }, h("span", { text: "AI" }), h("div", { class: "rtv-meter" }, this.aiMeter))
    );
    this.stopBtn = h("button", { class: "rtv-btn rtv-small", title: "Interrupt the assistant", onclick: () => this.engine.send({ type: "control", action: "interrupt" }) });
    this.stopBtn.innerHTML = ICONS.stop;
    this.stopBtn.append(h("span", { text: "Interrupt" }));
    this.headphonesBox = h("input", { type: "checkbox", onchange: (e) => this.setTrait("headphones", e.target.checked) });
    const headphones = h(
      "label",
      { class: "rtv-check", title: "With headphones the assistant can always be interrupted by voice. On speakers too, when the browser cancels the echo of its voice (measured as it first speaks); if it does not, the mic pauses while the assistant talks, so it does not hear itself." },
      this.headphonesBox,
      h("span", { icon: "headphones", class: "rtv-icon" }),
      h("span", { text: "Headphones (voice barge-in)" })
    );
    const controls = h(
      "div",
      { class: "rtv-controls" },
      h("div", { class: "rtv-mic-wrap" }, this.micBtn, this.micLabel),
      h("div", { class: "rtv-control-stack" }, modes, meters, h("div", { class: "rtv-row" }, headphones, this.stopBtn))
    );
    this.transcriptEl = h("div", { class: "rtv-transcript", "aria-live": "polite" });
    this.textInput = h("input", { class: "rtv-input", type: "text", placeholder: "Type a message and press Enter", "aria-label": "Message" });
    this.textInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.sendText();
      e.stopPropagation();
    });
    this.textInput.addEventListener("keyup", (e) => e.stopPropagation());
    const sendBtn = h("button", { class: "rtv-btn rtv-icon-btn", title: "Send", "aria-label": "Send", onclick: () => this.sendText() });
    sendBtn.innerHTML = ICONS.send;
    const voice = h(
      "section",
      { class: "rtv-panel rtv-voice" },
      h("h3", { text: "Conversation" }),
      controls,
      this.transcriptEl,
      this.buildExportBar(),
      this.agentsUI.panel,
      h("div", { class: "rtv-text-row" }, this.textInput, sendBtn)
    );
    this.settings = this.buildSettings();
    this.statsEl = h("div", { class: "rtv-stats" });
    this.tabSettings = h("button", { class: "rtv-tab", text: "Settings", onclick: () => this.showTab("settings") });
    this.tabInfo = h("button", { class: "rtv-tab", text: "Info & stats", onclick: () => this.showTab("info") });
    const side = h(
      "section",
      { class: "rtv-panel rtv-side" },
      h("div", { class: "rtv-tabs" }, this.tabInfo, this.tabSettings),
      this.statsEl,
      this.settings
    );
    this.chips = {};
    const chipRow = h("div", { class: "rtv-chips" });
    for (const cat of CATEGORIES2) {
      const count = h("span", { class: "rtv-chip-count", text: "0" });
      const chip = h(
        "button",
        { class: `rtv-chip rtv-cat-${cat} rtv-on`, "aria-pressed": "true", onclick: () => this.toggleChip(cat) },
        h("span", { class: "rtv-swatch" }),
        h("span", { text: CATEGORY_LABELS2[cat] }),
        count
      );
      this.chips[cat] = { chip, count };
      chipRow.append(chip);
    }
    this.search = h("input", { class: "rtv-input rtv-search", type: "search", placeholder: "Filter by type", "aria-label": "Filter events by type" });
    this.search.addEventListener("input", () => {
      this.query = this.search.value;
      this.schedule("events");
    });
    this.search.addEventListener("keydown", (e) => e.stopPropagation());
    this.eventsTotal = h("span", { class: "rtv-muted" });
    this.followBtn = h("button", { class: "rtv-btn rtv-small rtv-follow", text: "Follow new events", onclick: () => this.resumeFollow() });
    this.eventsScroll = h("div", { class: "rtv-events-scroll", tabindex: "0" });
    this.eventsSpacer = h("div", { class: "rtv-events-spacer" });
    this.eventsWindow = h("div", { class: "rtv-events-window" });
    this.eventsSpacer.append(this.eventsWindow);
    this.eventsScroll.append(this.eventsSpacer);
    this.eventsScroll.addEventListener("scroll", () => {
      this.follow = this.engine.libs.state.atBottom(this.eventsScroll);
      this.schedule("events");
    });
    const events = h(
      "section",
      { class: "rtv-panel rtv-events" },
      h("div", { class: "rtv-events-head" }, h("h3", { text: "Real-time events" }), this.eventsTotal, this.followBtn),
      h("div", { class: "rtv-events-tools" }, chipRow, this.search),
      this.eventsScroll
    );
    this.root = h("div", { class: "rtv-root", tabindex: "-1" }, header, this.notice, h("div", { class: "rtv-grid" }, voice, side), events);
    this.root.addEventListener("keydown", (e) => {
      if (e.code === "Space" && this.model.get("mode") === "push_to_talk" && !e.repeat && !isField(e.target)) {
        e.preventDefault();
        this.engine.pushToTalk(true);
      }
    });
    this.root.addEventListener("keyup", (e) => {
      if (e.code === "Space" && !isField(e.target)) this.engine.pushToTalk(false);
    });
    this.el.append(this.root);
    this.showTab("info");
    for (const part of ["state", "mic", "levels", "events", "transcript", "stats", "settings"]) this.pending.add(part);
    this.flushRender();
  }
  /** Copy the transcript, download it (Markdown, JSON) or the recording (WAV): lib/export.js. */
  buildExportBar() {
    this.exportNote = h("span", { class: "rtv-export-note rtv-muted", "aria-live": "polite" });
    const copy = h("button", {
      class: "rtv-btn rtv-small rtv-export-copy",
      text: "Copy text",
      title: "Copy the conversation as text",
      onclick: async () => {
        const ok = await copyText(transcriptText(this.engine.transcript.list()));
        this.exportNote.textContent = ok ? "Copied" : "Could not copy here";
      }
    });
    const download = (format, label, title) => h("button", {
      class: `rtv-btn rtv-small rtv-export-${format}`,
      text: label,
      title,
      onclick: () => {
        this.engine.send({ type: "control", action: "download", format });
        this.exportNote.textContent = "";
      }
    });
    return h(
      "div",
      { class: "rtv-export" },
      copy,
      h("span", { class: "rtv-muted rtv-export-label", text: "Download" }),
      download("md", "Markdown", "Download the transcript as Markdown"),
      download("json", "JSON", "Download the transcript (times, latencies) as JSON"),
      download("wav", "WAV", "Download the recording (you left, AI right) as WAV"),
      this.exportNote
    );
  }
  buildSettings() {
    const field = (label, input, hint) => h("label", { class: "rtv-field" }, h("span", { class: "rtv-field-label", text: label }), input, hint ? h("span", { class: "rtv-hint", text: hint }) : null);
    this.voiceSel = h("select", { class: "rtv-input", onchange: (e) => this.setTrait("voice", e.target.value) });
    this.speedIn = h("input", { class: "rtv-input", type: "number", min: "0.25", max: "1.5", step: "0.05", onchange: (e) => this.setNumber("speed", e.target.value) });
    this.turnSel = h("select", { class: "rtv-input", onchange: (e) => this.setTurn(e.target.value) });
    for (const [v, label] of [["server_vad", "Server VAD"], ["semantic_vad", "Semantic VAD"], ["push_to_talk", "Push to talk (manual)"]]) this.turnSel.append(h("option", { value: v, text: label }));
    this.thresholdIn = h("input", { class: "rtv-input", type: "number", min: "0", max: "1", step: "0.05", onchange: (e) => this.setNumber("vad_threshold", e.target.value) });
    this.silenceIn = h("input", { class: "rtv-input", type: "number", min: "100", max: "5000", step: "50", onchange: (e) => this.setNumber("silence_ms", e.target.value, true) });
    this.instructionsIn = h("textarea", { class: "rtv-input rtv-instructions", rows: "4" });
    this.instructionsIn.addEventListener("keydown", (e) => e.stopPropagation());
    const apply = h("button", { class: "rtv-btn rtv-small", text: "Apply instructions", onclick: () => this.setTrait("instructions", this.instructionsIn.value) });
    this.settingsError = h("div", { class: "rtv-hint rtv-error-text" });
    return h(
      "div",
      { class: "rtv-settings" },
      h(
        "div",
        { class: "rtv-field-grid" },
        field("Voice", this.voiceSel),
        field("Speed", this.speedIn),
        field("Turn detection", this.turnSel),
        field("VAD threshold", this.thresholdIn),
        field("Silence (ms)", this.silenceIn)
      ),
      field("Instructions", this.instructionsIn),
      h("div", { class: "rtv-row" }, apply, h("span", { class: "rtv-hint", text: "Changes apply live (session.update)." })),
      this.settingsError
    );
  }
  showTab(tab) {
    this.tab = tab;
    this.settings.hidden = tab !== "settings";
    this.statsEl.hidden = tab !== "info";
    this.tabSettings.classList.toggle("rtv-active", tab === "settings");
    this.tabInfo.classList.toggle("rtv-active", tab === "info");
  }
  setTrait(name, value) {
    this.model.set(name, value);
    this.model.save_changes();
  }
  setNumber(name, raw, integer = false) {
    const value = integer ? parseInt(raw, 10) : parseFloat(raw);
    if (!Number.isFinite(value)) return this.schedule("settings");
    this.setTrait(name, value);
  }
  setTurn(value) {
    if (value === "push_to_talk") this.setTrait("mode", "push_to_talk");
    else {
      this.model.set("turn_detection", value);
      if (this.model.get("mode") === "push_to_talk") this.model.set("mode", "continuous");
      this.model.save_changes();
    }
  }
  claimMic() {
    this.engine.model.set("_mic_owner", this.id);
    this.engine.model.save_changes();
  }
  toggleConnect() {
    const status = this.model.get("status");
    if (status === "connected" || status === "connecting" || status === "reconnecting") {
      this.engine.send({ type: "control", action: "disconnect" });
      this.engine.stopAudio();
    } else {
      this.claimMic();
      this.engine.startAudio();
      this.engine.send({ type: "control", action: "connect" });
    }
  }
  micDown(e) {
    const eng = this.engine;
    if (!eng.ownsMic()) {
      this.claimMic();
      eng.stopAudio(false);
      eng.startAudio();
      return;
    }
    if (eng.mic === "suspended") return void eng.resume();
    if (!eng.ctx || ["denied", "no_device", "error", "off"].includes(eng.mic)) {
      eng.stopAudio(false);
      eng.startAudio();
      return;
    }
    const mode = this.model.get("mode");
    if (mode === "push_to_talk") {
      e.preventDefault();
      eng.pushToTalk(true);
    } else this.setTrait("mode", mode === "mute" ? "continuous" : "mute");
  }
  micUp() {
    if (this.engine.pttHeld) this.engine.pushToTalk(false);
  }
  noticeClick() {
    const eng = this.engine;
    if (eng.mic === "suspended") eng.resume();
    else if (eng.mic === "elsewhere" || !eng.ownsMic()) {
      this.claimMic();
      eng.startAudio();
    } else if (["denied", "no_device", "error"].includes(eng.mic)) {
      eng.stopAudio(false);
      eng.startAudio();
    }
  }
  sendText() {
    const text = this.textInput.value.trim();
    if (!text) return;
    this.engine.send({ type: "text", text });
    this.textInput.value = "";
  }
  toggleChip(cat) {
    if (this.filters.has(cat)) this.filters.delete(cat);
    else this.filters.add(cat);
    const on = this.filters.has(cat);
    this.chips[cat].chip.classList.toggle("rtv-on", on);
    this.chips[cat].chip.setAttribute("aria-pressed", String(on));
    this.schedule("events");
  }
  resumeFollow() {
    this.follow = true;
    this.schedule("events");
  }
  // rendering: coalesce updates into one animation frame
  update(part) {
    this.schedule(part);
  }
  schedule(part) {
    this.pending.add(part);
    if (this.frame) return;
    const raf = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (f) => setTimeout(f, 16);
    this.frame = raf(() => {
      this.frame = 0;
      this.flushRender();
    });
  }
  flushRender() {
    const parts = this.pending;
    this.pending = /* @__PURE__ */ new Set();
    if (parts.has("state") || parts.has("mic")) this.renderState();
    if (parts.has("levels")) this.renderLevels();
    if (parts.has("transcript")) this.renderTranscript();
    if (parts.has("events")) this.renderEvents();
    if (parts.has("stats") || parts.has("events")) this.renderStats();
    if (parts.has("settings")) this.renderSettings();
  }
  renderState() {
    const m = this.model;
    const eng = this.engine;
    const status = m.get("status") || "disconnected";
    this.root.dataset.status = status;
    this.statusText.textContent = STATUS_TEXT[status] || status;
    this.backendBadge.textContent = m.get("backend_label") || "";
    this.backendBadge.hidden = !m.get("backend_label");
    this.modelText.textContent = m.get("model_name") || "";
    const live = status === "connected" || status === "connecting" || status === "reconnecting";
    this.connectBtn.textContent = live ? "Disconnect" : "Connect";
    this.connectBtn.classList.toggle("rtv-primary", !live);
    const owner = m.get("_mic_owner");
    const elsewhere = owner && !eng.views.has(owner);
    const mic = elsewhere ? "elsewhere" : eng.mic;
    const mode = m.get("mode");
    for (const [name, b] of Object.entries(this.modeButtons)) {
      b.classList.toggle("rtv-active", name === mode);
      b.setAttribute("aria-checked", String(name === mode));
    }
    const muted = mode === "mute";
    const icon = muted || mic !== "live" ? "micOff" : "mic";
    if (this.micBtn.dataset.icon !== icon) {
      this.micBtn.innerHTML = ICONS[icon];
      this.micBtn.dataset.icon = icon;
    }
    this.micBtn.dataset.state = mic === "live" ? muted ? "muted" : !m.get("ready") ? "waiting" : eng.pttHeld ? "talking" : mode : mic;
    let label = MIC_TEXT[mic] || mic;
    if (mic === "live") label = muted ? "Muted" : !m.get("ready") ? MIC_TEXT.waiting : mode === "push_to_talk" ? eng.pttHeld ? "Talking…" : "Hold to talk (or Space)" : "Listening";
    if (mic === "live" && !m.get("headphones") && eng.duplex !== "full" && eng.playing && !muted) label = "Paused while AI speaks";
    this.micLabel.textContent = label;
    let text = "";
    let action = "";
    let kind = "info";
    const error = m.get("error");
    if (status === "error" && error) [text, kind] = [error, "error"];
    else if (status === "reconnecting") [text, kind] = [m.get("notice") || "Connection lost – reconnecting…", "warn"];
    else if (mic === "suspended") [text, action, kind] = [eng.micDetail, "Resume audio", "warn"];
    else if (mic === "elsewhere" && live) [text, action] = ["Another view of this chat is using the microphone.", "Use mic here"];
    else if (["denied", "no_device", "unavailable", "error"].includes(mic)) [text, action, kind] = [eng.micDetail, mic === "unavailable" ? "" : "Try again", "error"];
    else if (m.get("waiting_for") && (status === "connecting" || status === "connected" && !m.get("ready"))) {
      text = `${m.get("waiting_for")} ${this.waitedSeconds()} s`;
      kind = "wait";
    } else if (m.get("notice")) text = m.get("notice");
    if (kind !== "wait") this.waitStart = null;
    this.tickWhileWaiting(kind === "wait");
    this.notice.hidden = !text;
    this.notice.dataset.kind = kind;
    this.noticeText.textContent = text;
    this.noticeAction.textContent = action;
    this.noticeAction.hidden = !action;
  }
  /**
   * Seconds since the current wait (see `waiting_for`) began, as the person sees it. A wait
   * goes through stages (the offline server's models, then the session): the count goes on.
   */
  waitedSeconds() {
    if (this.waitStart === null) this.waitStart = performance.now();
    return Math.floor((performance.now() - this.waitStart) / 1e3);
  }
  /** Re-render once a second while waiting, so the elapsed time shows the wait is alive. */
  tickWhileWaiting(on) {
    if (on && !this.waitTicker) this.waitTicker = setInterval(() => this.schedule("state"), 1e3);
    else if (!on && this.waitTicker) {
      clearInterval(this.waitTicker);
      this.waitTicker = 0;
    }
  }
  renderLevels() {
    const toWidth = (level) => `${Math.max(0, Math.min(100, (20 * Math.log10(level + 1e-6) + 60) / 60 * 100)).toFixed(1)}%`;
    this.micMeter.style.width = toWidth(this.engine.levels.mic);
    this.aiMeter.style.width = toWidth(this.engine.levels.ai);
    this.stopBtn.disabled = !this.engine.playing;
    if (!this.model.get("headphones") && this.engine.duplex !== "full") this.renderState();
  }
  renderTranscript() {
    const entries = this.engine.transcript.list();
    const el2 = this.transcriptEl;
    const follow = this.engine.libs.state.atBottom(el2, 24);
    el2.replaceChildren();
    if (entries.length === 0) {
      el2.append(h("div", { class: "rtv-empty", text: "Say something, or type a message below." }));
      return;
    }
    for (const e of entries) {
      const role = e.role === "assistant" ? "assistant" : "user";
      const bubble = h(
        "div",
        { class: `rtv-msg rtv-${role}${e.final ? "" : " rtv-partial"}${e.interrupted ? " rtv-interrupted" : ""}` },
        h("div", { class: "rtv-msg-role", text: role === "assistant" ? "AI" : "You" }),
        h("div", { class: "rtv-msg-text", text: e.text || (e.final ? "" : "…") }),
        e.interrupted ? h("div", { class: "rtv-msg-flag", text: "interrupted" }) : null
      );
      el2.append(bubble);
    }
    if (follow) el2.scrollTop = el2.scrollHeight;
  }
  renderEvents() {
    const { visibleRange: visibleRange2 } = this.engine.libs.state;
    const store = this.engine.events;
    for (const [cat, { count }] of Object.entries(this.chips)) count.textContent = String(store.counts[cat] || 0);
    const rows = store.filter({ categories: this.filters, query: this.query });
    this.eventsTotal.textContent = `${rows.length} shown · ${store.total} total${store.dropped ? ` (oldest ${store.dropped} only in chat.events)` : ""}`;
    const expandedIndex = this.expanded == null ? -1 : rows.findIndex((r) => r.seq === this.expanded);
    const scroll = this.eventsScroll;
    const range = visibleRange2({ scrollTop: scroll.scrollTop, viewport: scroll.clientHeight || 260, count: rows.length, rowHeight: ROW_HEIGHT, expanded: expandedIndex, extra: this.extra });
    this.eventsSpacer.style.height = `${range.height}px`;
    this.eventsWindow.style.transform = `translateY(${range.top}px)`;
    this.reconcileRows(rows, range, expandedIndex);
    if (expandedIndex >= range.start && expandedIndex < range.end) {
      const detail = this.eventsWindow.querySelector(".rtv-event-detail");
      const extra = detail ? detail.offsetHeight : 0;
      if (extra !== this.extra) {
        this.extra = extra;
        this.eventsSpacer.style.height = `${rows.length * ROW_HEIGHT + extra}px`;
      }
    }
    this.followBtn.hidden = this.follow;
    if (this.follow) {
      const bottom = Math.max(0, scroll.scrollHeight - scroll.clientHeight);
      if (Math.abs(scroll.scrollTop - bottom) > 1) scroll.scrollTop = bottom;
    }
  }
  /**
   * Put rows [range.start, range.end) in the window, reusing the nodes already there (keyed by
   * seq) so rows under the pointer are never replaced while events stream in: a click that
   * lands between two batches still reaches its row.
   */
  reconcileRows(rows, range, expandedIndex) {
    const win = this.eventsWindow;
    const existing = /* @__PURE__ */ new Map();
    for (const el2 of win.children) existing.set(el2.dataset.key, el2);
    let prev = null;
    for (let i = range.start; i < range.end; i++) {
      const key = `${rows[i].seq}${i === expandedIndex ? "+" : ""}`;
      let el2 = existing.get(key);
      if (el2) existing.delete(key);
      else {
        el2 = this.eventRow(rows[i], i === expandedIndex);
        el2.dataset.key = key;
      }
      const expectedPlace = prev ? prev.nextSibling : win.firstChild;
      if (expectedPlace !== el2) win.insertBefore(el2, expectedPlace);
      prev = el2;
    }
    for (const el2 of existing.values()) el2.remove();
  }
  eventRow(row, expanded) {
    const text = row.text != null && row.text !== "" ? String(row.text) : row.audio_ms ? `${Math.round(row.audio_ms)} ms audio` : "";
    const line = h(
      "div",
      { class: `rtv-event rtv-cat-${row.category}${expanded ? " rtv-expanded" : ""}`, onclick: () => this.toggleRow(row.seq) },
      h("span", { class: "rtv-swatch" }),
      h("span", { class: "rtv-ev-time", text: fmtSeconds(row.t_ms) }),
      h("span", { class: `rtv-ev-source rtv-src-${row.source}`, text: row.source === "client" ? "↑ sent" : row.source === "server" ? "↓ recv" : "• local" }),
      h("span", { class: "rtv-ev-type", text: String(row.type) }),
      h("span", { class: "rtv-ev-text", text })
    );
    if (!expanded) return line;
    const meta = { seq: row.seq, t_ms: row.t_ms, source: row.source, category: row.category, event_id: row.event_id, item_id: row.item_id, response_id: row.response_id, audio_ms: row.audio_ms, payload: row.payload };
    const detail = h("pre", { class: "rtv-event-detail", text: JSON.stringify(meta, null, 2) });
    detail.addEventListener("click", (e) => e.stopPropagation());
    return h("div", {}, line, detail);
  }
  toggleRow(seq) {
    this.expanded = this.expanded === seq ? null : seq;
    this.extra = 0;
    this.follow = false;
    this.schedule("events");
  }
  renderStats() {
    const s = this.model.get("stats") || {};
    const { formatMs: formatMs2, CATEGORIES: CATEGORIES2, CATEGORY_LABELS: CATEGORY_LABELS2 } = this.engine.libs.state;
    const counts = this.engine.events.counts;
    const stat = (label, value) => h("div", { class: "rtv-stat" }, h("div", { class: "rtv-stat-value", text: value }), h("div", { class: "rtv-stat-label", text: label }));
    const secs = (x) => typeof x === "number" ? `${x.toFixed(1)} s` : "–";
    this.statsEl.replaceChildren(
      h(
        "div",
        { class: "rtv-stat-grid" },
        // Headline: end of the user's voice (in the recording) -> first reply audio, the wait a
        // person hears. The server's speech_stopped -> first audio leaves out the turn
        // detection's wait, so it is the secondary figure.
        stat("End of voice → reply, last", formatMs2(s.voice_gap_last_ms)),
        stat("End of voice → reply, median", formatMs2(s.voice_gap_median_ms)),
        stat("End of voice → reply, p90", formatMs2(s.voice_gap_p90_ms)),
        stat("Speech stopped → reply, median", formatMs2(s.latency_median_ms)),
        stat("Turns", String(s.turns ?? 0)),
        stat("Interruptions", String(s.interruptions ?? 0)),
        stat("Audio sent", secs(s.audio_in_s)),
        stat("Audio received", secs(s.audio_out_s))
      ),
      h("div", { class: "rtv-cat-table" }, ...CATEGORIES2.map((c) => h("div", { class: `rtv-cat-line rtv-cat-${c}` }, h("span", { class: "rtv-swatch" }), h("span", { text: CATEGORY_LABELS2[c] }), h("span", { class: "rtv-cat-n", text: String(counts[c] || 0) })))),
      h("div", { class: "rtv-hint", text: "Everything here is in chat.events.to_pandas(), chat.transcript() and chat.recording." })
    );
  }
  renderSettings() {
    const m = this.model;
    const voices = m.get("voices") || [];
    const voice = m.get("voice") || "";
    const options = voices.includes(voice) || !voice ? voices : [voice, ...voices];
    if (this.voiceSel.options.length !== options.length || [...this.voiceSel.options].some((o, i) => o.value !== options[i])) {
      this.voiceSel.replaceChildren(...options.map((v) => h("option", { value: v, text: v })));
    }
    this.voiceSel.value = voice;
    if (document.activeElement !== this.speedIn) this.speedIn.value = String(m.get("speed"));
    this.turnSel.value = m.get("mode") === "push_to_talk" ? "push_to_talk" : m.get("turn_detection");
    if (document.activeElement !== this.thresholdIn) this.thresholdIn.value = String(m.get("vad_threshold"));
    if (document.activeElement !== this.silenceIn) this.silenceIn.value = String(m.get("silence_ms"));
    const semantic = m.get("turn_detection") === "semantic_vad" || m.get("mode") === "push_to_talk";
    this.thresholdIn.disabled = this.silenceIn.disabled = semantic;
    if (document.activeElement !== this.instructionsIn) this.instructionsIn.value = m.get("instructions") || "";
    this.settingsError.textContent = m.get("settings_error") || "";
    this.headphonesBox.checked = !!m.get("headphones");
  }
  destroy() {
    this.agentsUI.destroy();
    if (this.frame && typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.frame);
    this.tickWhileWaiting(false);
    this.root.remove();
  }
};
function isField(target) {
  return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
}
function engineFor(model) {
  const id = model.get("_widget_id");
  if (!engines.has(id)) {
    addStyles();
    engines.set(id, Promise.resolve(libs).then((libs2) => {
      const engine = new Engine(model, libs2);
      engine.detach = attachModel(engine, model);
      engine.send({ type: "control", action: "hello" });
      return engine;
    }));
  }
  return engines.get(id);
}
function listen(model, names, fn) {
  const list = names.split(" ");
  for (const name of list) model.on(name, fn);
  return () => {
    for (const name of list) model.off(name, fn);
  };
}
function attachModel(engine, model) {
  let lastStatus = model.get("status");
  const onState = () => {
    engine.notify("state");
    const status = model.get("status");
    const disconnectedNow = status === "disconnected" && lastStatus !== "disconnected";
    lastStatus = status;
    const owner = model.get("_mic_owner");
    if (engine.ctx && owner && !engine.views.has(owner)) engine.stopAudio(false);
    if (model.get("status") === "connected" && !owner && engine.views.size) {
      model.set("_mic_owner", engine.views.keys().next().value);
      model.save_changes();
    }
    if (model.get("status") === "connected" && engine.ownsMic() && !engine.ctx && engine.mic === "off") engine.startAudio();
    engine.maybeStartMic();
    if (disconnectedNow && engine.ctx) engine.stopAudio(false);
  };
  const onSettings = () => {
    engine.notify("settings");
    engine.notify("state");
  };
  const off = [
    listen(model, "msg:custom", (msg, buffers) => engine.onMessage(msg, buffers)),
    listen(model, "change:status change:_mic_owner change:mode change:notice change:error change:backend_label change:model_name change:headphones change:full_duplex change:ready change:waiting_for", onState),
    listen(model, "change:stats", () => engine.notify("stats")),
    listen(model, "change:voice change:voices change:speed change:turn_detection change:vad_threshold change:silence_ms change:instructions change:settings_error change:mode change:headphones", onSettings)
  ];
  return () => off.forEach((f) => f());
}
async function initialize({ model }) {
  const engine = await engineFor(model);
  return () => {
    engine.detach();
    engine.stopAudio(false);
    engines.delete(model.get("_widget_id"));
  };
}
async function render({ model, el: el2 }) {
  let engine;
  try {
    engine = await engineFor(model);
  } catch (err) {
    el2.textContent = `rtvoice-widget could not load its front end: ${err && err.message ? err.message : err}`;
    return;
  }
  const view = new View(model, engine, el2);
  engine.views.set(view.id, view);
  const stopListening = listen(model, "change:status change:_mic_owner change:mode change:ready change:waiting_for", () => view.update("state"));
  if (!model.get("_mic_owner") && model.get("status") === "connected") {
    model.set("_mic_owner", view.id);
    model.save_changes();
  }
  return () => {
    stopListening();
    engine.views.delete(view.id);
    view.destroy();
    if (engine.model.get("_mic_owner") === view.id) {
      engine.stopAudio(false);
      engine.model.set("_mic_owner", "");
      engine.model.save_changes();
    }
  };
}
var widget_default2 = { initialize, render };
export {
  widget_default2 as default
};
