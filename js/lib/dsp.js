// Pure audio helpers shared by the capture worklet, the main thread and node's tests.
//
// Contract: no top-level side effects: esbuild bundles it into the capture worklet and the
// audio-link worker (js/worklets/) as well as the main bundle. Everything here works on plain
// typed arrays.

/** Float samples in [-1, 1] to little-endian PCM16 (clipped, rounded to nearest). */
export function floatToPcm16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    // NaN would otherwise become 0 silently via the Int16Array cast; make it explicit.
    const clipped = s !== s ? 0 : s < -1 ? -1 : s > 1 ? 1 : s;
    out[i] = Math.round(clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff);
  }
  return out;
}

/** PCM16 samples to floats in [-1, 1). */
export function pcm16ToFloat(pcm) {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 0x8000;
  return out;
}

/**
 * Copy a received binary buffer into a fresh, aligned Int16Array.
 *
 * Buffers from the kernel arrive as a DataView that may start at an odd offset inside a larger
 * ArrayBuffer, so viewing them in place as Int16 can throw or read the wrong bytes.
 * A trailing odd byte (a malformed frame) is dropped rather than misread.
 */
export function toInt16(buffer) {
  let bytes;
  if (buffer instanceof ArrayBuffer) bytes = new Uint8Array(buffer);
  else if (ArrayBuffer.isView(buffer)) bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  else throw new TypeError("expected an ArrayBuffer or a view of one");
  const even = bytes.byteLength - (bytes.byteLength % 2);
  const copy = new Uint8Array(even);
  copy.set(bytes.subarray(0, even));
  // PCM16 on the wire is little-endian; every platform a browser runs on is too, so a view suffices.
  return new Int16Array(copy.buffer);
}

/** Root-mean-square level of a block, 0 for an empty block. */
export function rms(samples) {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length);
}

/**
 * Streaming band-limited resampler (Hann-windowed sinc, polyphase, normalised weights).
 *
 * Hand-written, small and dependency-free (it runs inside the capture worklet), because the
 * browser's own resampling is not reachable from a worklet. Feed blocks of any length with
 * `process()`; the output is continuous across blocks (state: the integer read position, its
 * phase, and the filter history). The ratio is kept exact as integers (44100 -> 24000 is 147/80),
 * so output positions never drift, and each phase's weights are computed once. The low-pass
 * cut-off follows the lower of the two rates, so capture at 48 kHz -> 24 kHz does not alias.
 * Latency: `halfWidth` input samples.
 */
export class Resampler {
  constructor(inRate, outRate, taps = 8) {
    if (!(inRate > 0) || !(outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {
      throw new RangeError(`sample rates must be positive integers: ${inRate} -> ${outRate}`);
    }
    const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b));
    const g = gcd(inRate, outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    this.up = outRate / g; // phases per input sample
    this.down = inRate / g; // phase steps per output sample
    // Cut-off as a fraction of the input Nyquist, a little below it to leave room for the window.
    this.cutoff = Math.min(1, outRate / inRate) * 0.92;
    this.halfWidth = Math.ceil(taps / this.cutoff);
    this.history = new Float32Array(this.halfWidth); // zeros: the signal starts from silence
    this.index = this.halfWidth; // input index (in `history`) of the next output...
    this.phase = 0; // ...plus phase / up samples
    this.tables = new Map(); // phase -> Float32Array of 2 * halfWidth normalised weights
  }

  _weights(phase) {
    let table = this.tables.get(phase);
    if (table) return table;
    const w = this.halfWidth;
    table = new Float32Array(2 * w);
    let sum = 0;
    for (let j = 0; j < 2 * w; j++) {
      const x = w - 1 - j + phase / this.up; // distance from the output position to tap j
      let value = 0;
      if (x > -w && x < w) {
        const a = Math.PI * this.cutoff * x;
        value = (x === 0 ? 1 : Math.sin(a) / a) * 0.5 * (1 + Math.cos((Math.PI * x) / w));
      }
      table[j] = value;
      sum += value;
    }
    for (let j = 0; j < 2 * w; j++) table[j] /= sum;
    // Unusual rate pairs can have thousands of phases: cache only a bounded number of tables.
    if (this.tables.size < 1024) this.tables.set(phase, table);
    return table;
  }

  process(input) {
    const w = this.halfWidth;
    const data = new Float32Array(this.history.length + input.length);
    data.set(this.history);
    data.set(input, this.history.length);
    const room = data.length - w - this.index;
    const out = new Float32Array(room > 0 ? Math.ceil((room * this.up) / this.down) + 1 : 0);
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
}

/**
 * Cuts a stream of float samples into fixed-size PCM16 frames (20 ms at 24 kHz = 480 samples).
 * `push()` returns the frames completed by this block, in order; the remainder waits for the
 * next block, so no sample is lost or duplicated at block boundaries.
 */
export class FrameChunker {
  constructor(frameSamples = 480) {
    if (!Number.isInteger(frameSamples) || frameSamples <= 0) throw new RangeError("frameSamples must be a positive integer");
    this.frameSamples = frameSamples;
    this.pending = new Float32Array(frameSamples);
    this.filled = 0;
  }

  push(samples) {
    const frames = [];
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(this.frameSamples - this.filled, samples.length - offset);
      this.pending.set(samples.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.frameSamples) {
        frames.push(floatToPcm16(this.pending));
        this.filled = 0;
      }
    }
    return frames;
  }
}

/**
 * Audio at any rate into 20 ms frames of 24 kHz PCM16 (`Resampler` then `FrameChunker`): `push(samples,
 * rate)` returns the frames completed; a new rate starts a new resampler (the chunker's remainder stays).
 */
export class Framer {
  constructor(rate = 0, outRate = 24000, frameSamples = 480) {
    this.outRate = outRate;
    this.rate = 0;
    this.resampler = null;
    this.chunker = new FrameChunker(frameSamples);
    if (rate) this.setRate(rate);
  }

  setRate(rate) {
    this.rate = rate;
    this.resampler = new Resampler(rate, this.outRate);
  }

  push(samples, rate) {
    if (rate !== this.rate) this.setRate(rate);
    return this.chunker.push(this.resampler.process(samples));
  }
}

/**
 * Milliseconds of a track's audio missing before a chunk stamped `timestampUs` (WebCodecs
 * AudioData timestamps, µs) when the chunk before it ended at `expectedUs` (null: none yet).
 * Under 10 ms is clock jitter, not loss: 0.
 */
export function lostMs(expectedUs, timestampUs) {
  if (expectedUs === null || expectedUs === undefined) return 0;
  const ms = (timestampUs - expectedUs) / 1000;
  return ms >= 10 ? ms : 0;
}
