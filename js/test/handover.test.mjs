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
