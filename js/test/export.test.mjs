import { test } from "node:test";
import assert from "node:assert/strict";
import { DownloadAssembler, bytesOf, transcriptText } from "../lib/export.js";

test("transcriptText writes one line per entry with text, marks interruptions, skips empty ones", () => {
  const text = transcriptText([
    { role: "user", text: " Hello there ", final: true },
    { role: "assistant", text: "Hi! How can I", final: true, interrupted: true },
    { role: "user", text: "", final: false },
  ]);
  assert.equal(text, "You: Hello there\nAI: Hi! How can I [interrupted]\n");
  assert.equal(transcriptText([]), "");
});

test("DownloadAssembler joins pieces in index order whatever the arrival order", () => {
  const d = new DownloadAssembler();
  const head = { id: "x", name: "c.wav", mime: "audio/wav", count: 3 };
  assert.equal(d.add({ ...head, index: 2 }, new Uint8Array([5])), null);
  assert.equal(d.add({ ...head, index: 0 }, new Uint8Array([1, 2])), null);
  assert.equal(d.add({ ...head, index: 0 }, new Uint8Array([1, 2])), null); // a copy counts once
  const file = d.add({ ...head, index: 1 }, new Uint8Array([3, 4]));
  assert.equal(file.name, "c.wav");
  assert.deepEqual(file.parts.map((p) => [...p]), [[1, 2], [3, 4], [5]]);
  assert.equal(d.open.size, 0);
});

test("DownloadAssembler refuses bad headers and bounds what it holds", () => {
  const d = new DownloadAssembler(2);
  assert.equal(d.add({ id: "a", index: 3, count: 2 }, new Uint8Array(1)), null);
  assert.equal(d.add({ id: 5, index: 0, count: 1 }, new Uint8Array(1)), null);
  assert.equal(d.open.size, 0);
  for (const id of ["a", "b", "c"]) d.add({ id, index: 0, count: 2 }, new Uint8Array(1));
  assert.deepEqual([...d.open.keys()], ["b", "c"]);
});

test("bytesOf copies a DataView at an offset", () => {
  const buf = new Uint8Array([9, 1, 2, 3]).buffer;
  const out = bytesOf(new DataView(buf, 1, 2));
  assert.deepEqual([...out], [1, 2]);
});
