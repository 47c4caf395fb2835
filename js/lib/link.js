// The audio-link worker, seen from the main thread: started from its bundled source
// (js/worklets/link-worker.js) once the player exists and the kernel said where the link is,
// then wired to both worklets by ports of their own, so audio between the worklets and the
// kernel's AudioLink WebSocket never waits for the main thread. Until the link is open (or if it
// never opens) frames go through Jupyter (mic-route.js); the worker also feeds the player from
// both transports in the kernel's order (handover.js's PlayerHandover).

export class LinkWorker {
  /**
   * `source`: the worker's script. `handlers`: {open(open: bool) on a real change,
   * linkFrom(stream, seq), arrived(itemId, t), overflow(buffer, count, ms)}.
   * `start()` returns null where workers are forbidden (a CSP): then Jupyter carries everything.
   */
  static start(source, info, { sampleRate, playback, capture }, handlers) {
    if (typeof Worker === "undefined" || typeof MessageChannel === "undefined") return null;
    let worker;
    try {
      const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      worker = new Worker(url, { type: "module" });
    } catch (err) {
      return null; // a page that forbids workers (CSP): stay on Jupyter
    }
    const link = new LinkWorker(worker, handlers);
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
    const h = this.handlers;
    if (msg.type === "overflow") h.overflow(msg.buffer, msg.count, msg.ms);
    else if (msg.type === "arrived") h.arrived(msg.itemId, msg.t);
    else if (msg.type === "linkFrom") h.linkFrom(msg.stream, msg.seq);
    else if (msg.type === "open" || msg.type === "closed") {
      const open = msg.type === "open";
      if (!open) h.closed();
      if (open === this.open) return; // failed retries of a link that never opened: quiet
      this.open = open;
      h.open(open);
    }
  }

  terminate() {
    this.worker.terminate();
    this.open = false;
  }
}
