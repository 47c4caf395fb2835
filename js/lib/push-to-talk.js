// Push-to-talk: the key (or the mic button) held opens the turn, its release ends it. The turn
// must end after the last frame captured while the key was held, wherever that frame travels
// (Jupyter or the audio link): on release the capture worklet closes its gate and names that
// frame, and `ptt_end` carries it (`stream`, `through`), so the kernel commits once it has
// every frame up to it (rtvoice_widget/mic_ingest.py).

export class PushToTalk {
  /**
   * `send(content)`: a control message to the kernel. `capture()`: the live Capture (or null)
   * and whether its context runs; `pageNow()`: the page clock.
   */
  constructor({ send, capture, pageNow }) {
    this.send = send;
    this.capture = capture;
    this.pageNow = pageNow;
    this.held = false;
  }

  /** The key went down (`true`) or up; returns whether that changed anything. */
  set(held) {
    if (this.held === held) return false;
    this.held = held;
    const { capture, running } = this.capture();
    // A suspended context's worklet may not answer: then nothing was captured meanwhile anyway.
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
}
