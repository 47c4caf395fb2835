// rtvoice-widget front end: an anywidget ESM module (plain DOM, no build step).
//
// Data flow (see docs/ARCHITECTURE.md): the mic is captured by an AudioWorklet, resampled to
// 24 kHz PCM16 and sent to the kernel as 20 ms binary custom messages; assistant audio comes back
// as binary messages and plays through a second worklet that reports played ms per item. State
// (status, settings, stats) arrives as traitlets; event rows and transcript updates arrive as
// batched custom messages. Nothing here ever holds a secret: the kernel talks to the server.
//
// The pure logic lives in lib/*.js, the worklets and the link worker in worklets/; build.mjs
// bundles all of it (and widget.css) into rtvoice_widget/static/widget.js, which the page gets
// from the kernel (see loader.js) and imports from a Blob URL.

import { AgentsUI } from "./lib/agents-ui.js"; // agents hook (issue 16)
import { AudioGraph } from "./lib/audio-graph.js";
import { Capture, gateOpen, openMic, stopStream } from "./lib/capture.js";
import { pageNow, pageTimeOf } from "./lib/clock.js";
import { EchoCheck } from "./lib/echo-check.js";
import { LinkWorker } from "./lib/link.js";
import { MicRoute } from "./lib/mic-route.js";
import { PlayerRoute } from "./lib/player-route.js";
import { PushToTalk } from "./lib/push-to-talk.js";
import { DownloadAssembler, bytesOf, copyText, saveFile, transcriptText } from "./lib/export.js";
import * as state from "./lib/state.js";
import captureSource from "./worklets/capture.js?source";
import playbackSource from "./worklets/playback.js?source";
import linkWorkerSource from "./worklets/link-worker.js?source";
import trackReaderSource from "./worklets/track-reader.js?source";
import css from "./widget.css";

const ICONS = {
  mic: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 1 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11z"/></svg>',
  micOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M19 11a7 7 0 0 1-1.2 3.9l-1.5-1.5A5 5 0 0 0 17 11zM15 5v5.2L9 4.2A3 3 0 0 1 15 5zM4.3 3 3 4.3l6 6V11a3 3 0 0 0 4.4 2.6l1.6 1.6A5 5 0 0 1 7 11H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 3.4-1.4L19.7 21l1.3-1.3z"/></svg>',
  stop: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="6" y="6" width="12" height="12" rx="2"/></svg>',
  send: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 20.5 21 12 3 3.5V10l12 2-12 2z"/></svg>',
  headphones: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3a9 9 0 0 0-9 9v7a2 2 0 0 0 2 2h2v-8H5v-1a7 7 0 0 1 14 0v1h-2v8h2a2 2 0 0 0 2-2v-7a9 9 0 0 0-9-9z"/></svg>',
};

const STATUS_TEXT = {
  disconnected: "Disconnected",
  connecting: "Connecting\u2026",
  connected: "Connected",
  reconnecting: "Reconnecting\u2026",
  error: "Error",
};

const MIC_TEXT = {
  off: "Mic off",
  starting: "Starting mic\u2026",
  live: "Listening",
  waiting: "Not listening yet",
  denied: "Mic access denied",
  no_device: "No microphone",
  unavailable: "Mic unavailable here",
  suspended: "Audio paused",
  elsewhere: "Mic in another view",
  error: "Mic error",
};

// --- module loading ---------------------------------------------------------------------------

const libs = { state };

/** The widget's styles, once per document (anywidget's `_css` would be saved in the notebook). */
function addStyles() {
  if (typeof document === "undefined" || document.getElementById("rtvoice-widget-css")) return;
  const style = document.createElement("style");
  style.id = "rtvoice-widget-css";
  style.textContent = css;
  document.head.append(style);
}

// --- the per-widget engine (shared by every view of one widget in this page) -------------------

const engines = new Map(); // _widget_id -> Promise<Engine>

let viewCounter = 0;
const pageId = Math.random().toString(36).slice(2, 10);

/**
 * Audio, stores and kernel messages for one widget in this page: the wiring between the audio
 * graph (lib/audio-graph.js), the mic (lib/capture.js, lib/mic-route.js), the link worker
 * (lib/link.js), the player's audio (lib/player-route.js) and push-to-talk
 * (lib/push-to-talk.js), and the mic's state as the views show it.
 *
 * anywidget gives each view its own `model` object, so the engine is keyed by the `_widget_id`
 * trait and receives kernel messages once (from `initialize`), not once per view.
 */
class Engine {
  constructor(model, libs) {
    this.model = model;
    this.libs = libs;
    this.events = new libs.state.EventStore(5000);
    this.transcript = new libs.state.TranscriptStore(500);
    this.views = new Map(); // viewId -> view (has .update(parts))
    this.mic = "off";
    this.micDetail = "";
    this.graph = null; // AudioGraph while audio is up
    this.stream = null; // the mic's MediaStream
    this.capture = null; // Capture on that stream
    this.micLevel = 0;
    this.player = new PlayerRoute({
      send: (content) => this.send(content),
      pageNow,
      pageTimeOf: (t) => pageTimeOf(this.ctx, t),
      changed: () => this.notify("levels"),
      rendered: (power, ms) => {
        if (this.measuring()) this.decided(this.echo.playback(power, ms));
        else if (this.monitoring()) this.replyEcho.playback(power, ms);
      },
    });
    this.echo = new EchoCheck(); // full or half duplex on speakers, measured per mic
    // In full duplex, the same measure over each run of playback, reported as it ends.
    this.replyEcho = new EchoCheck({ windowMs: Infinity }); // never decides: summary() only
    this.micRoute = new MicRoute(({ stream, seq, t, pcm }) => this.send({ type: "audio", stream, seq, t }, [pcm]));
    this.ptt = new PushToTalk({
      send: (content) => this.send(content),
      capture: () => ({ capture: this.capture, running: !!this.graph && this.graph.running }),
      pageNow,
    });
    this.linkInfo = null; // {url, token, key} from the kernel
    this.downloads = new DownloadAssembler(); // transcript panel downloads (lib/export.js)
    this.link = null; // LinkWorker
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
    if (!r || r.measuredMs < 1000) return;
    this.send({ type: "echo", return_loss_db: r.returnLossDb, playback_dbfs: r.playbackDbfs,
      mic_dbfs: r.micDbfs, measured_ms: r.measuredMs });
  }

  /** The echo check decided (`result` from EchoCheck, or null while it has not): tell the kernel. */
  decided(result) {
    if (!result) return;
    this.send({ type: "duplex", state: result.state, return_loss_db: result.returnLossDb,
      playback_dbfs: result.playbackDbfs, mic_dbfs: result.micDbfs, measured_ms: result.measuredMs });
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
    this.model.send(content, undefined, buffers);
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
        if (msg.reset) this.events = new this.libs.state.EventStore(5000);
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
        // Once per page, whichever view asked: the engine saves it.
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
      this.graph = new AudioGraph({ capture: captureSource, playback: playbackSource }, () => this.checkSuspended());
      await this.graph.load();
      this.player.ready(this.graph.playback, this.graph.ctx);
      // The link opens now, before the mic: the first words can go straight over it.
      this.startLink();
      this.player.replay();
    } catch (err) {
      this.stopAudio(false);
      this.setMic("error", `Audio could not start: ${err && err.message ? err.message : err}`);
      return;
    }
    // The mic opens when the session is ready (the server may first load its models for
    // seconds): until then nothing could be heard, so the mic is not claimed. A context
    // suspended for want of a user gesture is reported once the mic is asked for.
    this.setMic("waiting", "", false);
    this.maybeStartMic();
  }

  /** Open the mic if audio is up, the session is ready and nothing else holds it back. */
  maybeStartMic() {
    const m = this.model;
    // A suspended context (no user gesture yet) does not stop us asking for the mic: the
    // person then sees what to fix first (permission, device), and "click to resume" after.
    const idle = this.mic === "waiting" || (this.mic === "suspended" && !this.stream);
    if (this.graph && idle && m.get("ready") && m.get("status") === "connected" && this.ownsMic()) this.startMic();
  }

  async startMic() {
    this.setMic("starting", "", false);
    const opened = await openMic(typeof navigator !== "undefined" ? navigator.mediaDevices : undefined);
    if (!opened.stream) {
      this.setMic(opened.state, opened.detail);
      return;
    }
    this.stream = opened.stream;
    if (!this.graph) return; // stopped while waiting for permission
    this.capture = new Capture(this.graph.ctx, this.stream, (frame) => this.onFrame(frame), { played: this.graph.playback, readerSource: trackReaderSource, mediaDevices: navigator.mediaDevices });
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
    this.link = LinkWorker.start(linkWorkerSource, this.linkInfo, {
      sampleRate: this.graph.sampleRate,
      playback: this.player.playback,
      capture: this.capture ? this.capture.node : null,
    }, {
      overflow: (buffer, count, ms) => this.player.overflows.add(buffer, count, ms),
      arrived: (itemId, t) => this.player.arrived(itemId, t),
      linkFrom: (stream, seq) => this.micRoute.linkFromAnnounced(stream, seq),
      closed: () => this.micRoute.linkClosed(),
      open: (open) => this.send({ type: "mic", state: open ? "link_open" : "link_closed" }),
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
      mode: m.get("mode"), pttHeld: this.ptt.held, status: m.get("status"), ready: m.get("ready"),
      headphones: m.get("headphones"), duplex: this.duplex, playing: this.player.playing,
      msSincePlayback: performance.now() - this.player.lastPlaybackAt, playingForMs: this.player.playingForMs(),
    });
  }

  onFrame(frame) {
    if (!this.capture) return; // stopped meanwhile
    if (frame.ack) {
      this.ptt.acked(frame);
      return;
    }
    // The double-talk detector sent the raw mic for a voice over the assistant: the kernel logs it.
    if (frame.bargeIn) {
      this.send({ type: "barge_in", t: frame.bargeIn.t, onset_ms: frame.bargeIn.onsetMs });
      return;
    }
    // The detector's own reports: only kept for a bench that asked for them (window.rtvDoubleTalkLog).
    if (frame.dtd) {
      const log = globalThis.rtvDoubleTalkLog;
      if (Array.isArray(log)) log.push([Date.now(), frame.dtd, frame.state]);
      return;
    }
    this.micLevel = frame.level;
    // The echo match experiment's verdicts on held frames, for a bench that asked for them.
    if (frame.match !== undefined && Array.isArray(globalThis.rtvEchoMatchLog)) globalThis.rtvEchoMatchLog.push([Date.now(), frame.level, frame.match, frame.echo, frame.lag]);
    if (this.measuring()) this.decided(this.echo.mic(frame.level));
    else if (this.monitoring()) this.replyEcho.mic(frame.level);
    else if (!this.player.playing && this.replyEcho.playMs > 0) this.reportReplyEcho();
    this.notify("levels");
    // The capture worklet numbers and stamps the frames meant for the kernel; it learns which
    // those are (and how its clock maps to the page's) from here, for the next frames.
    const m = this.model;
    // Full duplex on speakers: what the mic hears while the assistant talks must look like a
    // person talking before the server hears it (js/lib/speech-hold.js).
    this.capture.holdSpeech = !m.get("headphones") && this.duplex === "full" && m.get("mode") === "continuous" && this.player.playing;
    this.capture.gate(this.shouldSend(), pageNow());
    if (frame.seq === null) return;
    this.micRoute.frame(frame);
  }

  /** A player message that came through Jupyter: played in the view that holds the mic. */
  toPlayer(header, buffer) {
    if (!this.ownsMic()) return; // another view plays it
    this.player.fromJupyter(header, buffer);
  }

  pushToTalk(held) {
    if (this.ptt.set(held)) this.notify("mic");
  }
}

// --- DOM helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "icon") el.innerHTML = ICONS[v]; // our own constant SVG, never server text
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

function fmtSeconds(ms) {
  return typeof ms === "number" ? (ms / 1000).toFixed(2) : "";
}

// --- one view ---------------------------------------------------------------------------------

const ROW_HEIGHT = 24;

class View {
  constructor(model, engine, el) {
    this.model = model;
    this.engine = engine;
    this.el = el;
    this.id = `${pageId}-${++viewCounter}`;
    this.filters = new Set(engine.libs.state.CATEGORIES);
    this.query = "";
    this.follow = true;
    this.expanded = null; // seq of the expanded event row
    this.extra = 0;
    this.pending = new Set();
    this.frame = 0;
    this.waitStart = null; // when the current wait began (performance.now() ms); null: none
    this.waitTicker = 0;
    this.build();
  }

  build() {
    const { CATEGORIES, CATEGORY_LABELS } = this.engine.libs.state;
    const m = this.model;
    this.statusDot = h("span", { class: "rtv-dot" });
    this.statusText = h("span", { class: "rtv-status-text" });
    this.backendBadge = h("span", { class: "rtv-badge" });
    this.modelText = h("span", { class: "rtv-model" });
    this.connectBtn = h("button", { class: "rtv-btn rtv-primary", onclick: () => this.toggleConnect() });
    this.agentsUI = new AgentsUI(m, (content) => this.engine.send(content)); // agents hook: badge + approvals
    const header = h("div", { class: "rtv-header" },
      h("div", { class: "rtv-title" }, this.statusDot, h("strong", { text: "Voice chat" }), this.statusText),
      h("div", { class: "rtv-header-meta" }, this.agentsUI.badge, this.backendBadge, this.modelText),
      this.connectBtn);

    this.noticeText = h("span", { class: "rtv-notice-text" });
    this.noticeAction = h("button", { class: "rtv-btn rtv-small", onclick: () => this.noticeClick() });
    this.notice = h("div", { class: "rtv-notice", role: "status" }, this.noticeText, this.noticeAction);

    // voice controls
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
    const meters = h("div", { class: "rtv-meters" },
      h("div", { class: "rtv-meter-row" }, h("span", { text: "You" }), h("div", { class: "rtv-meter" }, this.micMeter)),
      h("div", { class: "rtv-meter-row" }, h("span", { text: "AI" }), h("div", { class: "rtv-meter" }, this.aiMeter)));
    this.stopBtn = h("button", { class: "rtv-btn rtv-small", title: "Interrupt the assistant", onclick: () => this.engine.send({ type: "control", action: "interrupt" }) });
    this.stopBtn.innerHTML = ICONS.stop;
    this.stopBtn.append(h("span", { text: "Interrupt" }));
    this.headphonesBox = h("input", { type: "checkbox", onchange: (e) => this.setTrait("headphones", e.target.checked) });
    const headphones = h("label", { class: "rtv-check", title: "With headphones the assistant can always be interrupted by voice. On speakers too, when the browser cancels the echo of its voice (measured as it first speaks); if it does not, the mic pauses while the assistant talks, so it does not hear itself." },
      this.headphonesBox, h("span", { icon: "headphones", class: "rtv-icon" }), h("span", { text: "Headphones (voice barge-in)" }));
    const controls = h("div", { class: "rtv-controls" },
      h("div", { class: "rtv-mic-wrap" }, this.micBtn, this.micLabel),
      h("div", { class: "rtv-control-stack" }, modes, meters, h("div", { class: "rtv-row" }, headphones, this.stopBtn)));

    this.transcriptEl = h("div", { class: "rtv-transcript", "aria-live": "polite" });
    this.textInput = h("input", { class: "rtv-input", type: "text", placeholder: "Type a message and press Enter", "aria-label": "Message" });
    this.textInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.sendText();
      e.stopPropagation(); // typing a space here is text, not push-to-talk
    });
    this.textInput.addEventListener("keyup", (e) => e.stopPropagation());
    const sendBtn = h("button", { class: "rtv-btn rtv-icon-btn", title: "Send", "aria-label": "Send", onclick: () => this.sendText() });
    sendBtn.innerHTML = ICONS.send;
    const voice = h("section", { class: "rtv-panel rtv-voice" },
      h("h3", { text: "Conversation" }), controls, this.transcriptEl, this.buildExportBar(), this.agentsUI.panel, h("div", { class: "rtv-text-row" }, this.textInput, sendBtn));

    // settings + info
    this.settings = this.buildSettings();
    this.statsEl = h("div", { class: "rtv-stats" });
    this.tabSettings = h("button", { class: "rtv-tab", text: "Settings", onclick: () => this.showTab("settings") });
    this.tabInfo = h("button", { class: "rtv-tab", text: "Info & stats", onclick: () => this.showTab("info") });
    const side = h("section", { class: "rtv-panel rtv-side" },
      h("div", { class: "rtv-tabs" }, this.tabInfo, this.tabSettings), this.statsEl, this.settings);

    // events panel
    this.chips = {};
    const chipRow = h("div", { class: "rtv-chips" });
    for (const cat of CATEGORIES) {
      const count = h("span", { class: "rtv-chip-count", text: "0" });
      const chip = h("button", { class: `rtv-chip rtv-cat-${cat} rtv-on`, "aria-pressed": "true", onclick: () => this.toggleChip(cat) },
        h("span", { class: "rtv-swatch" }), h("span", { text: CATEGORY_LABELS[cat] }), count);
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
    const events = h("section", { class: "rtv-panel rtv-events" },
      h("div", { class: "rtv-events-head" }, h("h3", { text: "Real-time events" }), this.eventsTotal, this.followBtn),
      h("div", { class: "rtv-events-tools" }, chipRow, this.search),
      this.eventsScroll);

    this.root = h("div", { class: "rtv-root", tabindex: "-1" }, header, this.notice, h("div", { class: "rtv-grid" }, voice, side), events);
    // Space = push-to-talk while the widget has focus (never when typing in a field).
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
      class: "rtv-btn rtv-small rtv-export-copy", text: "Copy text", title: "Copy the conversation as text",
      onclick: async () => {
        const ok = await copyText(transcriptText(this.engine.transcript.list()));
        this.exportNote.textContent = ok ? "Copied" : "Could not copy here";
      },
    });
    const download = (format, label, title) => h("button", {
      class: `rtv-btn rtv-small rtv-export-${format}`, text: label, title,
      onclick: () => {
        this.engine.send({ type: "control", action: "download", format });
        this.exportNote.textContent = "";
      },
    });
    return h("div", { class: "rtv-export" }, copy, h("span", { class: "rtv-muted rtv-export-label", text: "Download" }),
      download("md", "Markdown", "Download the transcript as Markdown"),
      download("json", "JSON", "Download the transcript (times, latencies) as JSON"),
      download("wav", "WAV", "Download the recording (you left, AI right) as WAV"),
      this.exportNote);
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
    return h("div", { class: "rtv-settings" },
      h("div", { class: "rtv-field-grid" }, field("Voice", this.voiceSel), field("Speed", this.speedIn), field("Turn detection", this.turnSel),
        field("VAD threshold", this.thresholdIn), field("Silence (ms)", this.silenceIn)),
      field("Instructions", this.instructionsIn), h("div", { class: "rtv-row" }, apply, h("span", { class: "rtv-hint", text: "Changes apply live (session.update)." })),
      this.settingsError);
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
      this.engine.startAudio(); // inside the click: the AudioContext may start unsuspended
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
    this.pending = new Set();
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
      this.micBtn.innerHTML = ICONS[icon]; // our own constant SVG
      this.micBtn.dataset.icon = icon;
    }
    this.micBtn.dataset.state = mic === "live" ? (muted ? "muted" : !m.get("ready") ? "waiting" : eng.pttHeld ? "talking" : mode) : mic;
    let label = MIC_TEXT[mic] || mic;
    // Until the server confirmed the session (and, first time, loaded its models) nothing is heard.
    if (mic === "live") label = muted ? "Muted" : !m.get("ready") ? MIC_TEXT.waiting : mode === "push_to_talk" ? (eng.pttHeld ? "Talking\u2026" : "Hold to talk (or Space)") : "Listening";
    if (mic === "live" && !m.get("headphones") && eng.duplex !== "full" && eng.playing && !muted) label = "Paused while AI speaks";
    this.micLabel.textContent = label;

    // The notice line: the one thing the person should act on now, most urgent first.
    let text = "";
    let action = "";
    let kind = "info";
    const error = m.get("error");
    if (status === "error" && error) [text, kind] = [error, "error"];
    else if (status === "reconnecting") [text, kind] = [m.get("notice") || "Connection lost \u2013 reconnecting\u2026", "warn"];
    else if (mic === "suspended") [text, action, kind] = [eng.micDetail, "Resume audio", "warn"];
    else if (mic === "elsewhere" && live) [text, action] = ["Another view of this chat is using the microphone.", "Use mic here"];
    else if (["denied", "no_device", "unavailable", "error"].includes(mic)) [text, action, kind] = [eng.micDetail, mic === "unavailable" ? "" : "Try again", "error"];
    else if (m.get("waiting_for") && (status === "connecting" || (status === "connected" && !m.get("ready")))) {
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
    return Math.floor((performance.now() - this.waitStart) / 1000);
  }

  /** Re-render once a second while waiting, so the elapsed time shows the wait is alive. */
  tickWhileWaiting(on) {
    if (on && !this.waitTicker) this.waitTicker = setInterval(() => this.schedule("state"), 1000);
    else if (!on && this.waitTicker) {
      clearInterval(this.waitTicker);
      this.waitTicker = 0;
    }
  }

  renderLevels() {
    const toWidth = (level) => `${Math.max(0, Math.min(100, ((20 * Math.log10(level + 1e-6) + 60) / 60) * 100)).toFixed(1)}%`;
    this.micMeter.style.width = toWidth(this.engine.levels.mic);
    this.aiMeter.style.width = toWidth(this.engine.levels.ai);
    this.stopBtn.disabled = !this.engine.playing;
    if (!this.model.get("headphones") && this.engine.duplex !== "full") this.renderState(); // "paused while AI speaks" follows playback
  }

  renderTranscript() {
    const entries = this.engine.transcript.list();
    const el = this.transcriptEl;
    const follow = this.engine.libs.state.atBottom(el, 24);
    el.replaceChildren();
    if (entries.length === 0) {
      el.append(h("div", { class: "rtv-empty", text: "Say something, or type a message below." }));
      return;
    }
    for (const e of entries) {
      const role = e.role === "assistant" ? "assistant" : "user";
      const bubble = h("div", { class: `rtv-msg rtv-${role}${e.final ? "" : " rtv-partial"}${e.interrupted ? " rtv-interrupted" : ""}` },
        h("div", { class: "rtv-msg-role", text: role === "assistant" ? "AI" : "You" }),
        h("div", { class: "rtv-msg-text", text: e.text || (e.final ? "" : "\u2026") }),
        e.interrupted ? h("div", { class: "rtv-msg-flag", text: "interrupted" }) : null);
      el.append(bubble);
    }
    if (follow) el.scrollTop = el.scrollHeight;
  }

  renderEvents() {
    const { visibleRange } = this.engine.libs.state;
    const store = this.engine.events;
    for (const [cat, { count }] of Object.entries(this.chips)) count.textContent = String(store.counts[cat] || 0);
    const rows = store.filter({ categories: this.filters, query: this.query });
    this.eventsTotal.textContent = `${rows.length} shown \u00b7 ${store.total} total${store.dropped ? ` (oldest ${store.dropped} only in chat.events)` : ""}`;
    const expandedIndex = this.expanded == null ? -1 : rows.findIndex((r) => r.seq === this.expanded);
    const scroll = this.eventsScroll;
    const range = visibleRange({ scrollTop: scroll.scrollTop, viewport: scroll.clientHeight || 260, count: rows.length, rowHeight: ROW_HEIGHT, expanded: expandedIndex, extra: this.extra });
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
      if (Math.abs(scroll.scrollTop - bottom) > 1) scroll.scrollTop = bottom; // triggers one more render
    }
  }

  /**
   * Put rows [range.start, range.end) in the window, reusing the nodes already there (keyed by
   * seq) so rows under the pointer are never replaced while events stream in: a click that
   * lands between two batches still reaches its row.
   */
  reconcileRows(rows, range, expandedIndex) {
    const win = this.eventsWindow;
    const existing = new Map();
    for (const el of win.children) existing.set(el.dataset.key, el);
    let prev = null;
    for (let i = range.start; i < range.end; i++) {
      const key = `${rows[i].seq}${i === expandedIndex ? "+" : ""}`;
      let el = existing.get(key);
      if (el) existing.delete(key);
      else {
        el = this.eventRow(rows[i], i === expandedIndex);
        el.dataset.key = key;
      }
      const expectedPlace = prev ? prev.nextSibling : win.firstChild;
      if (expectedPlace !== el) win.insertBefore(el, expectedPlace);
      prev = el;
    }
    for (const el of existing.values()) el.remove();
  }

  eventRow(row, expanded) {
    const text = row.text != null && row.text !== "" ? String(row.text) : row.audio_ms ? `${Math.round(row.audio_ms)} ms audio` : "";
    const line = h("div", { class: `rtv-event rtv-cat-${row.category}${expanded ? " rtv-expanded" : ""}`, onclick: () => this.toggleRow(row.seq) },
      h("span", { class: "rtv-swatch" }),
      h("span", { class: "rtv-ev-time", text: fmtSeconds(row.t_ms) }),
      h("span", { class: `rtv-ev-source rtv-src-${row.source}`, text: row.source === "client" ? "\u2191 sent" : row.source === "server" ? "\u2193 recv" : "\u2022 local" }),
      h("span", { class: "rtv-ev-type", text: String(row.type) }),
      h("span", { class: "rtv-ev-text", text }));
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
    const { formatMs, CATEGORIES, CATEGORY_LABELS } = this.engine.libs.state;
    const counts = this.engine.events.counts;
    const stat = (label, value) => h("div", { class: "rtv-stat" }, h("div", { class: "rtv-stat-value", text: value }), h("div", { class: "rtv-stat-label", text: label }));
    const secs = (x) => (typeof x === "number" ? `${x.toFixed(1)} s` : "\u2013");
    this.statsEl.replaceChildren(
      h("div", { class: "rtv-stat-grid" },
        // Headline: end of the user's voice (in the recording) -> first reply audio, the wait a
        // person hears. The server's speech_stopped -> first audio leaves out the turn
        // detection's wait, so it is the secondary figure.
        stat("End of voice \u2192 reply, last", formatMs(s.voice_gap_last_ms)),
        stat("End of voice \u2192 reply, median", formatMs(s.voice_gap_median_ms)),
        stat("End of voice \u2192 reply, p90", formatMs(s.voice_gap_p90_ms)),
        stat("Speech stopped \u2192 reply, median", formatMs(s.latency_median_ms)),
        stat("Turns", String(s.turns ?? 0)),
        stat("Interruptions", String(s.interruptions ?? 0)),
        stat("Audio sent", secs(s.audio_in_s)),
        stat("Audio received", secs(s.audio_out_s))),
      h("div", { class: "rtv-cat-table" }, ...CATEGORIES.map((c) =>
        h("div", { class: `rtv-cat-line rtv-cat-${c}` }, h("span", { class: "rtv-swatch" }), h("span", { text: CATEGORY_LABELS[c] }), h("span", { class: "rtv-cat-n", text: String(counts[c] || 0) })))),
      h("div", { class: "rtv-hint", text: "Everything here is in chat.events.to_pandas(), chat.transcript() and chat.recording." }));
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
    this.agentsUI.destroy(); // agents hook
    if (this.frame && typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.frame);
    this.tickWhileWaiting(false);
    this.root.remove();
  }
}

function isField(target) {
  return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
}

// --- anywidget entry points -------------------------------------------------------------------

function engineFor(model) {
  const id = model.get("_widget_id");
  // Store the promise, not the engine: initialize() and render() may both ask before libs load.
  if (!engines.has(id)) {
    addStyles();
    engines.set(id, Promise.resolve(libs).then((libs) => {
      const engine = new Engine(model, libs);
      engine.detach = attachModel(engine, model);
      engine.send({ type: "control", action: "hello" }); // ask the kernel for the history so far
      return engine;
    }));
  }
  return engines.get(id);
}

/** Subscribe `fn` to each space-separated event name; returns the unsubscribe function. */
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
    // Only a change *to* disconnected stops audio: Connect starts the mic inside the click,
    // before the kernel reports "connecting", and other traits may change meanwhile.
    const disconnectedNow = status === "disconnected" && lastStatus !== "disconnected";
    lastStatus = status;
    const owner = model.get("_mic_owner");
    // Another view (maybe in another tab) took the mic: release ours so only one captures.
    if (engine.ctx && owner && !engine.views.has(owner)) engine.stopAudio(false);
    // Connected from Python (chat.connect()) with nobody holding the mic: the first view takes it.
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
    listen(model, "change:voice change:voices change:speed change:turn_detection change:vad_threshold change:silence_ms change:instructions change:settings_error change:mode change:headphones", onSettings),
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

async function render({ model, el }) {
  let engine;
  try {
    engine = await engineFor(model);
  } catch (err) {
    el.textContent = `rtvoice-widget could not load its front end: ${err && err.message ? err.message : err}`;
    return;
  }
  const view = new View(model, engine, el);
  engine.views.set(view.id, view);
  // This view's own model proxy also sees state changes (anywidget may not share one object).
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
      // The mic owner went away: stop capturing and let another view take over.
      engine.stopAudio(false);
      engine.model.set("_mic_owner", "");
      engine.model.save_changes();
    }
  };
}

export default { initialize, render };
