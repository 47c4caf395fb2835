import { test } from "node:test";
import assert from "node:assert/strict";
import { PlayerHandover, LinkSender } from "../lib/handover.js";

const audio = (n) => ({ type: "audio", item_id: "a", n });

test("player: Jupyter audio plays at once, link audio waits for its connection's marker", () => {
  const played = [];
  const player = new PlayerHandover((header) => played.push(header.n ?? header.type));
  player.fromJupyter(audio(1), null, 0);
  player.fromLink(1, audio(3), null, 1); // overtook 2, still on its way through Jupyter
  player.fromLink(1, { type: "flush" }, null, 2);
  assert.deepEqual(played, [1]);
  player.fromJupyter(audio(2), null, 3);
  player.fromJupyter({ type: "player_link", conn: 1 }, null, 4);
  assert.deepEqual(played, [1, 2, 3, "flush"]);
  player.fromLink(1, audio(4), null, 5);
  assert.deepEqual(played, [1, 2, 3, "flush", 4]);
});

test("player: a new connection waits for its own marker; old or repeated markers change nothing", () => {
  const played = [];
  const player = new PlayerHandover((header, payload, t) => played.push([header.n, t]));
  player.fromJupyter({ type: "player_link", conn: 1 }, null, 0);
  player.fromLink(2, audio(7), null, 10);
  player.fromJupyter({ type: "player_link", conn: 1 }, null, 11);
  assert.deepEqual(played, []);
  player.fromJupyter(audio(6), null, 12);
  player.fromJupyter({ type: "player_link", conn: 2 }, null, 13);
  assert.deepEqual(played, [[6, 12], [7, 10]]); // each keeps the time it reached the page
  assert.equal(player.held.length, 0);
});

test("link sender: keeps frames until the link is proven, then sends them first, announcing where it starts", () => {
  const sent = [];
  const announced = [];
  const sender = new LinkSender((f) => sent.push(f.seq), (stream, seq) => announced.push([stream, seq]), 3);
  for (let seq = 0; seq < 5; seq++) sender.frame({ stream: 9, seq });
  assert.deepEqual(sent, []);
  sender.opened();
  sender.frame({ stream: 9, seq: 5 });
  assert.deepEqual(sent, [2, 3, 4, 5]); // the newest `capacity` frames, then the live ones
  assert.deepEqual(announced, [[9, 2]]);
  sender.closed();
  sender.frame({ stream: 9, seq: 6 });
  sender.frame({ stream: 4, seq: 0 }); // the mic restarted meanwhile
  sender.opened();
  assert.deepEqual(sent, [2, 3, 4, 5, 6, 0]);
  assert.deepEqual(announced, [[9, 2], [9, 6], [4, 0]]);
});

test("player: held link audio is capped; the oldest audio goes first, flushes are kept, drops are counted", () => {
  const played = [];
  const player = new PlayerHandover((header) => played.push(header.n ?? header.type), { maxHeld: 3 });
  const pcm = new Uint8Array(960); // 20 ms of 24 kHz PCM16
  player.fromLink(1, { type: "flush" }, null, 0);
  for (let n = 1; n <= 4; n++) player.fromLink(1, audio(n), pcm, n); // the marker never comes
  assert.equal(player.held.length, 3);
  assert.deepEqual(player.takeDropped(), { count: 2, ms: 40 });
  assert.deepEqual(player.takeDropped(), { count: 0, ms: 0 });
  player.fromJupyter({ type: "player_link", conn: 1 }, null, 9);
  assert.deepEqual(played, ["flush", 3, 4]); // in order, the newest audio kept
});

test("player: a flood of link audio without its marker holds at most maxHeld messages", () => {
  const player = new PlayerHandover(() => {});
  const pcm = new Uint8Array(4800); // 100 ms
  for (let n = 0; n < 50000; n++) player.fromLink(2, audio(n), pcm, n);
  assert.equal(player.held.length, player.maxHeld);
  assert.deepEqual(player.takeDropped(), { count: 50000 - player.maxHeld, ms: (50000 - player.maxHeld) * 100 });
});
