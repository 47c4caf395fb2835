// The page's audio graph: one AudioContext at the device's native rate (Safari ignores a
// requested rate and Firefox cannot mix rates: we resample), the capture and playback worklets
// loaded into it, and the player connected to the speakers. The mic joins it later (capture.js).
//
// The worklets' sources are bundled scripts (js/worklets/, imported as text by widget.js) and
// load from Blob URLs: a worklet cannot import by URL from a module that was itself a Blob.

const blobUrl = (source) => URL.createObjectURL(new Blob([source], { type: "text/javascript" }));

export class AudioGraph {
  /**
   * `sources`: {capture, playback} worklet source texts. `onStateChange()`: the context was
   * suspended or resumed (e.g. the browser waits for a user gesture).
   */
  constructor(sources, onStateChange) {
    this.sources = sources;
    this.ctx = new AudioContext({ latencyHint: "interactive" });
    this.ctx.onstatechange = onStateChange;
    this.playback = null; // the "rtv-playback" worklet node, once load() is done
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
    this.ctx.close().catch(() => {});
    this.playback = null;
  }
}
