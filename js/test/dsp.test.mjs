import { test } from "node:test";
import assert from "node:assert/strict";
import { floatToPcm16, pcm16ToFloat, toInt16, rms, Resampler, FrameChunker, lostMs } from "../lib/dsp.js";

function sine(freq, rate, n, amp = 0.5) {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
}

test("floatToPcm16 clips, rounds and maps the extremes", () => {
  const pcm = floatToPcm16(Float32Array.from([0, 1, -1, 2, -2, 0.5, NaN]));
  assert.deepEqual([...pcm], [0, 32767, -32768, 32767, -32768, 16384, 0]);
});

test("pcm16 round trip stays within one quantisation step", () => {
  const x = sine(440, 24000, 480);
  const back = pcm16ToFloat(floatToPcm16(x));
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(back[i] - x[i]) <= 1 / 32767);
});

test("toInt16 copies an unaligned DataView and drops a trailing odd byte", () => {
  const raw = new Uint8Array([9, 0x01, 0x00, 0xff, 0x7f, 0x00, 0x80, 7]);
  const view = new DataView(raw.buffer, 1, 7); // odd offset, odd length
  const pcm = toInt16(view);
  assert.deepEqual([...pcm], [1, 32767, -32768]);
  raw[1] = 5; // a copy, not a view of the received bytes
  assert.equal(pcm[0], 1);
  assert.throws(() => toInt16("nope"), TypeError);
});

test("resampler keeps duration exactly across arbitrary block sizes", () => {
  for (const [inRate, outRate] of [[48000, 24000], [44100, 24000], [24000, 48000], [24000, 44100], [24000, 24000]]) {
    const r = new Resampler(inRate, outRate);
    const x = sine(300, inRate, inRate); // 1 s
    let produced = 0;
    let offset = 0;
    const blocks = [128, 7, 1000, 1, 333];
    for (let b = 0; offset < x.length; b++) {
      const n = Math.min(blocks[b % blocks.length], x.length - offset);
      produced += r.process(x.subarray(offset, offset + n)).length;
      offset += n;
    }
    // All of it except the filter latency (halfWidth input samples) comes out.
    const expected = outRate - (r.halfWidth * outRate) / inRate;
    assert.ok(Math.abs(produced - expected) <= 2, `${inRate}->${outRate}: ${produced} vs ${expected}`);
  }
});

test("resampler preserves an in-band tone and removes an out-of-band one", () => {
  const down = new Resampler(48000, 24000);
  const tone = down.process(sine(1000, 48000, 48000));
  assert.ok(Math.abs(rms(tone.subarray(1000)) - 0.5 / Math.SQRT2) < 0.01);
  // 15 kHz is above the 12 kHz output Nyquist: it must not alias back in at 9 kHz.
  const alias = new Resampler(48000, 24000).process(sine(15000, 48000, 48000));
  assert.ok(rms(alias.subarray(1000)) < 0.02, `alias rms ${rms(alias.subarray(1000))}`);
});

test("resampler output is the same whether fed whole or in pieces", () => {
  const x = sine(523, 44100, 4410);
  const whole = new Resampler(44100, 24000).process(x);
  const r = new Resampler(44100, 24000);
  const parts = [];
  for (let i = 0; i < x.length; i += 128) parts.push(...r.process(x.subarray(i, i + 128)));
  assert.equal(parts.length, whole.length);
  for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(parts[i] - whole[i]) < 1e-6);
});

test("resampler rejects bad rates", () => {
  assert.throws(() => new Resampler(0, 24000), RangeError);
  assert.throws(() => new Resampler(48000, NaN), RangeError);
});

test("frame chunker emits exact 480-sample frames with nothing lost or repeated", () => {
  const chunker = new FrameChunker(480);
  const x = Float32Array.from({ length: 480 * 5 + 100 }, (_, i) => ((i % 1000) - 500) / 1000);
  const frames = [];
  for (let i = 0; i < x.length; i += 128) frames.push(...chunker.push(x.subarray(i, i + 128)));
  assert.equal(frames.length, 5);
  const joined = frames.flatMap((f) => [...f]);
  assert.deepEqual(joined, [...floatToPcm16(x.subarray(0, 480 * 5))]);
  assert.equal(chunker.filled, 100);
  assert.throws(() => new FrameChunker(0), RangeError);
});

test("lostMs: a chunk that starts later than the last one ended means dropped audio; jitter does not", () => {
  assert.equal(lostMs(null, 5_000_000), 0); // the first chunk
  assert.equal(lostMs(1_000_000, 1_000_000), 0);
  assert.equal(lostMs(1_000_000, 1_004_000), 0); // 4 ms: jitter
  assert.equal(lostMs(1_000_000, 1_510_000), 510);
});

