// Hand-overs between the two ways audio travels (Jupyter messages and the audio link), so that
// switching from one to the other never loses nor reorders audio. Used by the audio-link worker
// (bundled into it, see js/worklets/link-worker.js) and by node's tests.
//
// Contract: no top-level side effects (bundled into a worker).

/**
 * Assistant audio and flushes for the player, from two transports, in the kernel's order.
 *
 * The kernel sends each player message one way: through Jupyter until a page's link connection
 * `conn` is open, then over it. Jupyter is slower, so link messages could overtake Jupyter ones.
 * The kernel therefore sends `{type: "player_link", conn}` through Jupyter after everything it
 * sent there before using connection `conn` (rtvoice_widget/audio_link.py, AudioLink). Here:
 * Jupyter messages are delivered at once; a link message of connection `conn` waits until that
 * marker (or a later connection's) came through Jupyter. `deliver(header, payload, t)` gets
 * them in order; `t` is when the page received the message (page clock).
 *
 * Bound: at most `maxHeld` link messages wait (default 1000, minutes of audio: the marker is
 * normally ~100 ms behind). Past it the oldest held audio is dropped (flushes are kept: a lost
 * flush would let a barge-in's audio play on) and counted; `takeDropped()` returns
 * `{count, ms}` dropped since its last call, for the worker to report to the kernel.
 */
export class PlayerHandover {
  constructor(deliver, { maxHeld = 1000 } = {}) {
    this.deliver = deliver;
    this.maxHeld = maxHeld;
    this.released = 0; // link messages of connections <= this may be delivered
    this.held = []; // [conn, header, payload, t] from the link, waiting for their marker
    this.dropped = 0;
    this.droppedMs = 0;
  }

  fromJupyter(header, payload, t) {
    if (header.type !== "player_link") return this.deliver(header, payload, t);
    if (!(header.conn > this.released)) return undefined;
    this.released = header.conn;
    const waiting = this.held;
    this.held = [];
    for (const entry of waiting) {
      if (entry[0] <= this.released) this.deliver(entry[1], entry[2], entry[3]);
      else this.held.push(entry);
    }
    return undefined;
  }

  fromLink(conn, header, payload, t) {
    if (conn <= this.released) return this.deliver(header, payload, t);
    this.held.push([conn, header, payload, t]);
    if (this.held.length > this.maxHeld) {
      let oldest = this.held.findIndex((entry) => entry[1].type !== "flush");
      if (oldest < 0) oldest = 0;
      const [, dropped, bytes] = this.held.splice(oldest, 1)[0];
      this.dropped++;
      if (dropped.type === "audio" && bytes) this.droppedMs += bytes.byteLength / 48; // PCM16 24 kHz
    }
    return undefined;
  }

  /** Drops since the last call: `{count, ms}` (ms of 24 kHz PCM16 audio). */
  takeDropped() {
    const dropped = { count: this.dropped, ms: this.droppedMs };
    this.dropped = 0;
    this.droppedMs = 0;
    return dropped;
  }
}

/**
 * The link worker's side of the mic hand-over: which captured frames it sends, and from where.
 *
 * Frames come numbered from the capture worklet ({stream, seq, ...}, seq 0, 1, ... per stream,
 * only frames meant for the kernel). While the link is not proven (not open yet, or closed)
 * the newest `capacity` frames are kept; once it is, they are sent first, then every new frame.
 * `send(frame)` sends one; `announce(stream, seq)` tells the page's main thread "from `seq` on,
 * every frame of `stream` goes over the link", so it sends through Jupyter only what comes
 * before. Frames kept here that Jupyter also carried arrive twice: the kernel keeps one.
 */
export class LinkSender {
  constructor(send, announce, capacity = 250) {
    this.send = send;
    this.announce = announce;
    this.capacity = capacity;
    this.open = false;
    this.unsent = [];
    this.announced = null; // the stream announced since the link opened
  }

  frame(f) {
    if (this.open) return this.sendNow(f);
    this.unsent.push(f);
    if (this.unsent.length > this.capacity) this.unsent.shift();
    return undefined;
  }

  opened() {
    this.open = true;
    const waiting = this.unsent;
    this.unsent = [];
    for (const f of waiting) this.sendNow(f);
  }

  closed() {
    this.open = false;
    this.announced = null;
  }

  sendNow(f) {
    if (this.announced !== f.stream) {
      this.announced = f.stream;
      this.announce(f.stream, f.seq);
    }
    this.send(f);
  }
}
