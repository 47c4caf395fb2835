import { test } from "node:test";
import assert from "node:assert/strict";
import { describeCall } from "../lib/agents-ui.js";

test("describeCall shows JSON arguments as name=value", () => {
  assert.equal(describeCall("delete_file", '{"path": "/tmp/a", "force": true}'), 'delete_file(path="/tmp/a", force=true)');
  assert.equal(describeCall("reboot", ""), "reboot()");
});

test("describeCall keeps text that is not a JSON object, and cuts long arguments", () => {
  assert.equal(describeCall("f", "not json"), "f(not json)");
  assert.equal(describeCall("f", "[1,2]"), "f([1,2])");
  const long = describeCall("f", JSON.stringify({ text: "x".repeat(500) }), 20);
  assert.equal(long.length, "f()".length + 20);
  assert.ok(long.endsWith("\u2026)"));
});
