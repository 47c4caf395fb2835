// A minimal widget front end for tests: the real widget ESM against a fake anywidget `model`,
// wired to a real kernel-side VoiceChat through a WebSocket bridge (see bridge.py).
//
// Bridge frames: a JSON text frame {msg_type, data, nbuf} followed by `nbuf` binary frames.
// msg_type is the comm message type (comm_open / comm_msg / comm_close), data the comm data
// exactly as ipywidgets sends it ({method: "update" | "custom" | "echo_update", ...}).

const params = new URLSearchParams(location.search);
if (params.get("theme") === "dark") document.documentElement.dataset.theme = "dark";
const viewCount = Number(params.get("views") || 1);

const harness = (window.harness = { ready: false, error: null, sent: [], received: [], model: null, cleanups: [] });

const ws = new WebSocket(`ws://127.0.0.1:${params.get("ws")}/`);
ws.binaryType = "arraybuffer";

function post(msgType, data, buffers = []) {
  ws.send(JSON.stringify({ msg_type: msgType, data, nbuf: buffers.length }));
  for (const b of buffers) ws.send(b instanceof ArrayBuffer ? b : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

class FakeModel {
  constructor(state) {
    this.state = { ...state };
    this.listeners = new Map();
    this.dirty = {};
  }
  get(name) {
    return this.state[name];
  }
  set(name, value) {
    this.state[name] = value;
    this.dirty[name] = value;
    this.emit(`change:${name}`);
  }
  save_changes() {
    const state = this.dirty;
    this.dirty = {};
    if (Object.keys(state).length) post("comm_msg", { method: "update", state, buffer_paths: [] });
  }
  send(content, callbacks, buffers = []) {
    harness.sent.push(content);
    post("comm_msg", { method: "custom", content }, buffers);
  }
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
  }
  off(name, fn) {
    this.listeners.get(name)?.delete(fn);
  }
  emit(name, ...args) {
    for (const fn of [...(this.listeners.get(name) || [])]) fn(...args);
  }
  applyUpdate(state) {
    for (const [k, v] of Object.entries(state)) {
      if (JSON.stringify(this.state[k]) === JSON.stringify(v)) continue;
      this.state[k] = v;
      this.emit(`change:${k}`);
    }
  }
}

async function open(data) {
  const state = data.state;
  const model = (harness.model = new FakeModel(state));
  const url = URL.createObjectURL(new Blob([state._esm], { type: "text/javascript" }));
  const widget = (await import(url)).default;
  if (widget.initialize) harness.cleanups.push(await widget.initialize({ model }));
  const views = document.getElementById("views");
  for (let i = 0; i < viewCount; i++) {
    const el = document.createElement("div");
    el.className = "harness-view";
    views.append(el);
    harness.cleanups.push(await widget.render({ model, el }));
  }
  harness.ready = true;
}

let header = null;
let buffers = [];
function dispatch(h, bufs) {
  harness.received.push({ msg_type: h.msg_type, method: h.data && h.data.method, type: h.data?.content?.type });
  if (h.msg_type === "comm_open") {
    open(h.data).catch((err) => {
      harness.error = String(err && err.stack ? err.stack : err);
      console.error(err);
    });
  } else if (h.msg_type === "comm_msg" && harness.model) {
    if (h.data.method === "update") harness.model.applyUpdate(h.data.state);
    else if (h.data.method === "custom") harness.model.emit("msg:custom", h.data.content, bufs);
  }
}

ws.onmessage = (e) => {
  if (typeof e.data === "string") {
    header = JSON.parse(e.data);
    buffers = [];
  } else {
    // Like Jupyter: buffers arrive as DataViews (here at offset 0 of a fresh buffer).
    buffers.push(new DataView(e.data));
  }
  if (header && buffers.length === header.nbuf) {
    const h = header;
    header = null;
    dispatch(h, buffers);
  }
};
ws.onopen = () => post("hello", {});
