// Which way each mic frame goes to the kernel on the main thread's side: through Jupyter (a
// custom message), or not at all because the audio-link worker sends it (see link.js and
// handover.js's LinkSender). The kernel puts frames from both back in order and drops copies
// (MicFrameOrder in rtvoice_widget/audio_link.py), so a frame sent both ways is harmless; a
// frame sent neither way is a hole: that is what this prevents.

export class MicRoute {
  /** `sendJupyter(frame)`: send `{stream, seq, t, pcm}` as a custom message. */
  constructor(sendJupyter, { keep = 50 } = {}) {
    this.sendJupyter = sendJupyter;
    this.keep = keep; // frames kept for a link that may close (50: the last second)
    this.captureId = 0;
    this.linkFrom = null; // first seq the worker sends for this capture (null: it sends none)
    this.leftToLink = []; // frames skipped here for the worker, in case the link closes first
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
}
