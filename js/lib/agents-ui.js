// Agents in the widget (issue 16): the active agent's badge for the header, and the tool calls
// waiting for approval with Approve / Deny buttons. State comes from two traits, `agent` and
// `approvals` ([{call_id, name, arguments}], kept by rtvoice_widget/agents_widget.py); a click
// sends {type: "approval", call_id, approved}. All text from the kernel (tool names, the model's
// arguments) goes in as textContent, never as HTML.

const CSS = `
.rtv-root .rtv-agent { border-color: var(--rtv-ai); color: var(--rtv-ai); }
.rtv-root .rtv-approvals { display: flex; flex-direction: column; gap: 6px; }
.rtv-root .rtv-approvals:empty { display: none; }
.rtv-root .rtv-approval { display: flex; align-items: center; gap: 8px; padding: 6px 8px; border: 1px solid var(--rtv-warn); border-radius: 6px; background: color-mix(in srgb, var(--rtv-warn) 10%, transparent); }
.rtv-root .rtv-approval-text { flex: 1; min-width: 0; overflow-wrap: anywhere; font-size: 13px; }
.rtv-root .rtv-approval-call { font-family: var(--jp-code-font-family, monospace); }
`;

let styled = false;

/** A call as one line for a person: `name(a=1, b="x")`, arguments cut to `max` characters. */
export function describeCall(name, argumentsJson, max = 160) {
  let args = typeof argumentsJson === "string" ? argumentsJson : "";
  try {
    const parsed = JSON.parse(args || "{}");
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      args = Object.entries(parsed).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
    }
  } catch (_) {
    // Not JSON: shown as the model sent it.
  }
  if (args.length > max) args = `${args.slice(0, max - 1)}\u2026`;
  return `${String(name)}(${args})`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

export class AgentsUI {
  /** `send(content)` goes to the kernel. `badge` goes in the header, `panel` near the transcript. */
  constructor(model, send) {
    this.model = model;
    this.send = send;
    this.decided = new Set(); // call ids clicked here: their buttons stay off until the trait drops them
    if (!styled && typeof document !== "undefined") {
      styled = true;
      document.head.append(el("style", null, CSS));
    }
    this.badge = el("span", "rtv-badge rtv-agent");
    this.badge.title = "Active agent";
    this.panel = el("div", "rtv-approvals");
    this.panel.setAttribute("role", "region");
    this.panel.setAttribute("aria-label", "Tool calls waiting for approval");
    this.onChange = () => this.render();
    model.on("change:agent", this.onChange);
    model.on("change:approvals", this.onChange);
    this.render();
  }

  render() {
    const agent = this.model.get("agent") || "";
    this.badge.textContent = agent ? `Agent: ${agent}` : "";
    this.badge.hidden = !agent;
    const pending = this.model.get("approvals") || [];
    const ids = new Set(pending.map((r) => r.call_id));
    for (const id of [...this.decided]) if (!ids.has(id)) this.decided.delete(id);
    this.panel.replaceChildren(...pending.map((request) => this.row(request)));
  }

  row(request) {
    const text = el("span", "rtv-approval-text");
    text.append("The assistant wants to run ", el("span", "rtv-approval-call", describeCall(request.name, request.arguments)));
    const decided = this.decided.has(request.call_id);
    const button = (label, approved, primary) => {
      const b = el("button", `rtv-btn rtv-small${primary ? " rtv-primary" : ""}`, label);
      b.disabled = decided;
      b.dataset.callId = request.call_id;
      b.addEventListener("click", () => {
        this.decided.add(request.call_id);
        this.send({ type: "approval", call_id: request.call_id, approved });
        this.render();
      });
      return b;
    };
    const row = el("div", "rtv-approval");
    row.dataset.callId = request.call_id;
    row.append(text, button("Approve", true, true), button("Deny", false, false));
    return row;
  }

  destroy() {
    this.model.off("change:agent", this.onChange);
    this.model.off("change:approvals", this.onChange);
  }
}
