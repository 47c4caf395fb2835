// The capture worklet (js/worklets/capture.js) run in node: the AudioWorklet globals it uses are
// provided here (the browser's, not ours), the processor itself is the real one.
import { test } from "node:test";
import assert from "node:assert/strict";

const registered = {};
globalThis.sampleRate = 44100;
globalThis.currentTime = 0;
globalThis.AudioWorkletProcessor = class {
  constructor() {
    this.port = { posted: [], postMessage(msg) { this.posted.push(msg); }, onmessage: null };
  }
};
globalThis.registerProcessor = (name, cls) => { registered[name] = cls; };
await import("../worklets/capture.js");
const { echoPath, talker, to441 } = await import("./signals.mjs");

function capture() {
  const node = new registered["rtv-capture"]({ processorOptions: { stream: 7 } });
  const send = (msg) => node.port.onmessage({ data: msg });
  return { node, send, frames: () => node.port.posted.filter((m) => m.seq !== undefined && m.seq !== null) };
}

const tone = (n, rate, amp = 0.3) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * 440 * i) / rate));

test("audio fed from the track (48 kHz) is framed at 24 kHz, numbered and stamped; the graph's input is then ignored", () => {
  const { node, send, frames } = capture();
  send({ type: "gate", send: true, hold: false, contextTime: 0, pageTime: 1000 });
  for (let i = 0; i < 100; i++) send({ type: "pcm", samples: tone(480, 48000), rate: 48000 }); // 1 s
  const got = frames();
  // 1 s at 24 kHz is 24000 samples, 50 frames of 480 (the resampler keeps a few samples back);
  // taken as the context's 44.1 kHz it would be 54.
  assert.ok(got.length >= 49 && got.length <= 50, `${got.length} frames`);
  assert.deepEqual(got.map((f) => f.seq), [...Array(got.length).keys()]);
  for (const f of got) {
    assert.equal(f.stream, 7);
    assert.equal(new Int16Array(f.pcm).length, 480);
    assert.equal(f.t, 1000);
  }
  // About the tone's RMS (0.3 / sqrt 2) once the resampler has warmed up.
  assert.ok(Math.abs(got.at(-1).level - 0.3 / Math.SQRT2) < 0.02, `${got.at(-1).level}`);
  const before = node.port.posted.length;
  node.process([[tone(128, 44100)]]);
  assert.equal(node.port.posted.length, before, "the graph's input is ignored once the track feeds the node");
});

test("without the track's audio the graph's input is framed as before", () => {
  const { node, send, frames } = capture();
  send({ type: "gate", send: true, hold: false, contextTime: 0, pageTime: 0 });
  for (let i = 0; i < 40; i++) node.process([[tone(128, 44100)]]); // ~116 ms at 44.1 kHz
  assert.ok(frames().length >= 4, `${frames().length} frames`);
});

test("fed frames go through the speech hold like the graph's: nothing out until they look like speech", () => {
  const { send, frames } = capture();
  send({ type: "gate", send: true, hold: true, contextTime: 0, pageTime: 0 });
  for (let i = 0; i < 10; i++) send({ type: "pcm", samples: tone(480, 48000, 0.0001), rate: 48000 }); // -80 dBFS
  assert.equal(frames().length, 0);
  for (let i = 0; i < 40; i++) send({ type: "pcm", samples: tone(480, 48000), rate: 48000 });
  assert.ok(frames().length > 0);
  assert.deepEqual(frames().map((f) => f.seq), [...Array(frames().length).keys()]);
});

test("track audio the page dropped leaves a hole in the frame numbers, which the kernel logs as a mic.gap", () => {
  const { send, frames } = capture();
  send({ type: "gate", send: true, hold: false, contextTime: 0, pageTime: 0 });
  for (let i = 0; i < 20; i++) send({ type: "pcm", samples: tone(480, 48000), rate: 48000 });
  const before = frames().map((f) => f.seq);
  send({ type: "lost", ms: 600 }); // 30 frames' worth
  for (let i = 0; i < 20; i++) send({ type: "pcm", samples: tone(480, 48000), rate: 48000 });
  const after = frames().map((f) => f.seq).slice(before.length);
  assert.equal(after[0], before.at(-1) + 1 + 30);
  assert.deepEqual(after, after.map((_, i) => after[0] + i));
});


// Speech-like noise (low-passed, with a syllable-rate envelope) at 44.1 kHz, the test's context rate.
function babble(n, seed) {
  let s = seed >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  let y = 0;
  let env = 0.5;
  return Float32Array.from({ length: n }, (_, i) => {
    if (i % 882 === 0) env = 0.2 + 0.8 * Math.abs(rand());
    y = 0.9 * y + 0.1 * rand();
    return 0.5 * env * y;
  });
}

test("with the echo match, a held burst that copies the player's output stays held; a voice is released", () => {
  for (const [copy, released] of [[true, false], [false, true]]) {
    const node = new registered["rtv-capture"]({ processorOptions: { stream: 7, echoMatch: true } });
    const send = (msg) => node.port.onmessage({ data: msg });
    send({ type: "gate", send: true, hold: true, contextTime: 0, pageTime: 0 });
    const played = babble(44100 * 2, 5);
    const voice = babble(44100 * 2, 77);
    // 441 samples of playback per 10 ms, the mic (fed at 44.1 kHz) 100 ms behind it.
    for (let k = 0; k < 150; k++) {
      const at = k * 441;
      node.process([[], [played.subarray(at, at + 441)]]);
      const src = copy ? played : voice;
      const start = at - 4410;
      const mic = start >= 0 ? src.slice(start, start + 441).map((x) => 0.1 * x) : new Float32Array(441);
      send({ type: "pcm", samples: mic, rate: 44100 });
    }
    const sent = node.port.posted.filter((m) => m.seq !== undefined && m.seq !== null);
    assert.equal(sent.length > 0, released, `copy ${copy}: ${sent.length} frames sent`);
  }
});

const QUIET = 0.002; // -54 dBFS: a constant, so each of its frames has the same level, exactly

// Full duplex on speakers, the assistant audible: the processed track (the canceller's output)
// hides a voice that starts over the echo (here: it stays at -80 dBFS), the raw track has the
// echo (150 ms, -6 dB, reverberant) and, from `voiceAt` s, a second talker. Both arrive at
// 44.1 kHz in 10 ms chunks; the player's output is the node's second input, in 128-sample quanta.
const PROCESSED_LEVEL = (() => {
  const node = new registered["rtv-capture"]({ processorOptions: { stream: 7 } });
  node.port.onmessage({ data: { type: "gate", send: true, hold: false, contextTime: 0, pageTime: 0 } });
  node.port.onmessage({ data: { type: "pcm", samples: new Float32Array(4410).fill(QUIET), rate: 44100 } });
  return node.port.posted.at(-1).level;
})();

function duplexOnSpeakers({ voiceAt = null, seconds = 16, doubleTalk = true } = {}) {
  const node = new registered["rtv-capture"]({ processorOptions: { stream: 7, doubleTalk } });
  const send = (msg) => node.port.onmessage({ data: msg });
  const raw = { onmessage: null };
  send({ type: "raw", port: raw });
  send({ type: "gate", send: true, hold: true, contextTime: 0, pageTime: 0 });
  const played48 = talker(seconds, 21);
  const mic48 = echoPath(played48);
  if (voiceAt !== null) {
    const user = talker(seconds - voiceAt, 121);
    const at = Math.round(voiceAt * 48000);
    for (let i = 0; i < user.length && at + i < mic48.length; i++) mic48[at + i] += user[i];
  }
  const played = to441(played48), mic = to441(mic48);
  const quiet = new Float32Array(441).fill(QUIET); // the processed track, below the hold's floor
  let m = 0;
  for (let p = 0; p + 128 <= played.length; p += 128) {
    globalThis.currentTime = p / 44100;
    node.process([[], [played.subarray(p, p + 128)]]);
    while (m + 441 <= mic.length && (m + 441) / 44100 <= globalThis.currentTime) {
      raw.onmessage({ data: { type: "pcm", samples: mic.subarray(m, m + 441), rate: 44100 } });
      send({ type: "pcm", samples: quiet, rate: 44100 });
      m += 441;
    }
  }
  const frames = () => node.port.posted.filter((x) => x.seq !== undefined && x.seq !== null);
  return { node, send, frames, bargeIns: node.port.posted.filter((x) => x.bargeIn).map((x) => x.bargeIn) };
}

test("double talk: a voice the canceller hides is sent from the raw mic, its onset first, until the hold ends", () => {
  const { send, frames, bargeIns } = duplexOnSpeakers({ voiceAt: 12 });
  assert.equal(bargeIns.length, 1, JSON.stringify(bargeIns));
  const [barge] = bargeIns;
  // Decided within ~200 ms of the voice (page clock = context clock here), with 200 ms before it.
  assert.ok(barge.t >= 12000 && barge.t <= 12250, `detected at ${barge.t} ms`);
  assert.equal(barge.onsetMs, 200);
  const sent = frames();
  assert.deepEqual(sent.map((f) => f.seq), [...Array(sent.length).keys()], "numbered from 0, no holes");
  // The raw mic's frames (the echo at -6 dB and the voice), not the processed track's -80 dBFS.
  assert.ok(sent.length >= 10 + Math.floor((4000 - 250) / 20), `${sent.length} frames`);
  const processed = (f) => f.level === PROCESSED_LEVEL;
  assert.ok(!sent.some(processed), "a processed frame was sent while the raw mic was");
  const loud = sent.filter((f) => f.level > 0.001).length; // the talkers pause, both at once now and then
  assert.ok(loud >= 0.5 * sent.length, `${loud} of ${sent.length} frames loud`);
  assert.ok(sent[0].t < barge.t && sent[0].t >= barge.t - 260, `the onset from ${sent[0].t} ms`);
  // The assistant stops: the processed track goes on from the next number.
  const before = sent.length;
  send({ type: "gate", send: true, hold: false, contextTime: globalThis.currentTime, pageTime: globalThis.currentTime * 1000 });
  send({ type: "pcm", samples: new Float32Array(882).fill(QUIET), rate: 44100 });
  const after = frames().slice(before);
  assert.ok(after.length >= 1 && after[0].seq === before && after.every(processed), JSON.stringify(after.map((f) => [f.seq, f.level])));
});

test("double talk: the echo alone sends nothing, and with act: false a voice is only reported", () => {
  const echoOnly = duplexOnSpeakers({ voiceAt: null });
  assert.deepEqual([echoOnly.frames().length, echoOnly.bargeIns.length], [0, 0]);
  const measured = duplexOnSpeakers({ voiceAt: 12, doubleTalk: { act: false } });
  assert.deepEqual([measured.frames().length, measured.bargeIns.length], [0, 0]);
  assert.ok(measured.node.port.posted.some((x) => x.dtd && x.dtd.length), "detected, not acted on");
});

// The track reader's worker (js/worklets/track-reader.js) run in node: its worker globals are
// provided here; what it reads is a ReadableStream of AudioData-shaped chunks, as a
// MediaStreamTrackProcessor's readable gives, and it posts to the worklet over a real port.
globalThis.onmessage = null;
let readerClosed = false;
globalThis.close = () => { readerClosed = true; };
await import("../worklets/track-reader.js");
const startReader = globalThis.onmessage;

function audioData(samples, rate, timestampUs) {
  return {
    numberOfFrames: samples.length, sampleRate: rate, timestamp: timestampUs, duration: (samples.length / rate) * 1e6,
    copyTo(dest) { dest.set(samples); },
    close() { this.closed = true; },
  };
}

test("the track reader's worker feeds the worklet over its port, and a chunk the processor dropped becomes a hole in the numbers", async () => {
  const { send, frames } = capture();
  send({ type: "gate", send: true, hold: false, contextTime: 0, pageTime: 0 });
  const channel = new MessageChannel();
  send({ type: "track", port: channel.port1 });
  const chunks = [];
  for (let i = 0; i < 40; i++) {
    if (i >= 20 && i < 30) continue; // 10 chunks (100 ms, 5 frames) dropped by the processor
    chunks.push(audioData(tone(480, 48000), 48000, i * 10000));
  }
  const readable = new ReadableStream({ start(c) { for (const chunk of chunks) c.enqueue(chunk); c.close(); } });
  await startReader({ data: { readable, port: channel.port2, running: true } });
  await new Promise((resolve) => setTimeout(resolve, 50)); // the port's messages arrive
  const seqs = frames().map((f) => f.seq);
  assert.ok(seqs.length >= 13, `${seqs.length} frames`); // 300 ms read, 15 frames less what the resampler keeps
  const jumps = seqs.slice(1).map((s, i) => s - seqs[i]).filter((d) => d !== 1);
  assert.deepEqual(jumps, [6], `one hole of 5 frames: ${seqs}`);
  assert.ok(chunks.every((c) => c.closed), "every chunk is closed");
  assert.ok(readerClosed, "the worker ends with the track");
  channel.port1.close();
});
