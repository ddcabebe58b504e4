// The expert console: log in, see the queue (most urgent first), accept a call, watch
// the customer's camera with the live diagnosis, chat, snapshot, end with an outcome.
import { t, translatePage } from "./i18n.js";
import { Signal, api } from "./signal.js";
import { $, log, status } from "./ui.js";
import { Overlay, drawingTool } from "./overlay.js";

translatePage();
let signal;

$("login-form").onsubmit = async (ev) => {
  ev.preventDefault();
  let auth;
  try {
    auth = await api("/auth/login", { method: "POST", body: { username: $("username").value, password: $("password").value } });
  } catch (e) {
    $("login-error").textContent = t("login_failed", { detail: e.message });
    return;
  }
  $("login-card").hidden = true;
  $("queue-card").hidden = false;
  signal = new Signal(auth.access_token);
  await signal.connect();
  window.dispatchEvent(new Event("fixline:signal"));
  signal.addEventListener("queue", (e) => renderQueue(e.detail.items));
  signal.addEventListener("session_started", async () => {
    $("queue-card").hidden = true;
    $("video-card").hidden = false;
    $("chat-card").hidden = false;
    $("diagnosis-card").hidden = false;
    status(t("connecting"));
    // The expert talks to the customer: publish the microphone (video stays off).
    try {
      const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      await signal.publish(mic, (msg) => msg.type === "chat" && log(t("customer"), msg.text));
    } catch (e) {
      console.warn("no microphone", e);
    }
  });
  signal.addEventListener("tracks_changed", (e) => {
    if (e.detail.tracks > 0) signal.subscribe((track, s) => { if (track.kind === "video") { $("remote").srcObject = s; status(""); } });
  });
  signal.addEventListener("chat", (e) => log(t("customer"), e.detail.text));
  signal.addEventListener("live_diagnosis", (e) => renderDiagnosis(e.detail.verdict));
  signal.addEventListener("ended", (e) => status(t("session_ended", { outcome: e.detail.outcome })));
  signal.send({ type: "online" });
};

function renderQueue(items) {
  const ul = $("queue");
  ul.replaceChildren();
  if (!items.length) {
    const li = document.createElement("li");
    li.textContent = t("queue_empty");
    ul.append(li);
  }
  for (const item of items) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `${item.position}. [${item.priority}/${item.tier}] ${item.title}`;
    const b = document.createElement("button");
    b.textContent = t("accept");
    b.dataset.workOrder = item.work_order_id;
    b.onclick = () => signal.send({ type: "accept", work_order_id: item.work_order_id });
    li.append(label, b);
    ul.append(li);
  }
}

function renderDiagnosis(v) {
  const box = $("diagnosis");
  box.replaceChildren();
  const head = document.createElement("p");
  head.className = "status";
  head.textContent = v.unknown ? t("diagnosis_unknown") : v.hypotheses[0].label;
  head.dataset.label = v.unknown ? "unknown" : v.hypotheses[0].label;
  box.append(head);
  for (const h of v.hypotheses.slice(0, 3)) {
    const row = document.createElement("div");
    row.className = "hyp";
    row.innerHTML = "<span></span><span></span>";
    row.children[0].textContent = h.label;
    row.children[1].textContent = `${Math.round(h.probability * 100)} %`;
    box.append(row);
  }
}

$("chat-form").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text) return;
  signal.send({ type: "chat", text });
  log(t("you"), text);
  $("chat-input").value = "";
};
$("snapshot").onclick = () => signal.send({ type: "snapshot" });
$("end-resolved").onclick = () => signal.send({ type: "end", outcome: "resolved_remote" });
$("end-escalate").onclick = () => signal.send({ type: "end", outcome: "needs_escalation" });
$("end-unreachable").onclick = () => signal.send({ type: "end", outcome: "customer_unreachable" });

// ---- Guidance: annotations on the customer's video, procedures and step cards ----

const overlay = new Overlay($("remote"), $("remote-overlay"));
let workOrderId = null;
let currentCard = null;
const drawn = [];
const pen = drawingTool(overlay, (shape) => {
  if (shape.kind !== "laser") drawn.push(shape.id);
  overlay.set(shape);
  signal.sendFast({ type: "annotate", shape });
});
for (const b of document.querySelectorAll("#tools .tool")) {
  b.onclick = () => {
    for (const o of document.querySelectorAll("#tools .tool")) o.setAttribute("aria-pressed", String(o === b));
    pen.setTool(b.dataset.tool);
  };
}
$("undo").onclick = () => {
  const id = drawn.pop();
  if (!id) return;
  overlay.remove(id);
  signal.sendFast({ type: "annotation_remove", shape_id: id });
};
$("clear").onclick = () => {
  drawn.length = 0;
  overlay.clear();
  signal.sendFast({ type: "annotation_clear" });
};
$("freeze").onclick = () => {
  const v = $("remote");
  if (v.paused) v.play();
  else v.pause();
  $("freeze").textContent = t(v.paused ? "unfreeze" : "freeze");
};

/// Saves the frame shown (frozen or live) to the work order: the raw frame and the
/// same frame with the annotations drawn in, both as PNG snapshots.
$("save-snapshot").onclick = async () => {
  const v = $("remote");
  if (!workOrderId || !v.videoWidth) return;
  const c = document.createElement("canvas");
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0);
  const raw = await new Promise((r) => c.toBlob(r, "image/png"));
  overlay.paintAt(g, c.width, c.height);
  const annotated = await new Promise((r) => c.toBlob(r, "image/png"));
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  for (const [blob, name] of [[raw, `frame-${stamp}.png`], [annotated, `annotated-${stamp}.png`]]) {
    await fetch(`/api/v1/work-orders/${workOrderId}/evidence?kind=snapshot&filename=${encodeURIComponent(name)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${signal.token}`, "content-type": "image/png" },
      body: blob,
    });
  }
  status(t("snapshot_saved"));
};

function cardText(card) {
  const zh = document.documentElement.lang === "zh-CN";
  return {
    title: zh ? card.title_zh : card.title_en,
    text: zh ? card.step.instruction_zh : card.step.instruction_en,
  };
}

async function loadProcedures(q) {
  const token = signal.token;
  const list = $("procedures");
  list.replaceChildren();
  let hits = [];
  if (q) {
    hits = (await api(`/procedures?q=${encodeURIComponent(q)}&limit=8`, { token })).items;
  } else if (workOrderId) {
    const s = await api(`/work-orders/${workOrderId}/procedures`, { token });
    for (const item of s.items) for (const p of item.procedures) hits.push({ ...p, because: `${item.fault_id} ${Math.round(item.confidence * 100)} %` });
    for (const p of s.by_description) if (!hits.some((h) => h.id === p.id)) hits.push(p);
  }
  const zh = document.documentElement.lang === "zh-CN";
  for (const h of hits) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `${zh ? h.title_zh : h.title_en}${h.because ? ` (${h.because})` : ""}${h.remote_ok ? "" : " ⚠"}`;
    const b = document.createElement("button");
    b.textContent = t("push");
    b.dataset.procedure = h.id;
    b.onclick = () => signal.send({ type: "push_procedure", procedure_id: h.id });
    li.append(label, b);
    list.append(li);
  }
}

$("procedure-search").onsubmit = (ev) => {
  ev.preventDefault();
  loadProcedures($("procedure-q").value.trim());
};
$("step-back").onclick = () => signal.send({ type: "step_control", action: "back" });
$("step-skip").onclick = () => signal.send({ type: "step_control", action: "skip" });
$("step-next").onclick = () => signal.send({ type: "step_control", action: "next" });

/// Called once the signaling socket exists (after login).
function wireGuidance() {
  signal.addEventListener("session_started", (e) => {
    workOrderId = e.detail.work_order_id;
    $("procedure-card").hidden = false;
    loadProcedures("");
  });
  signal.addEventListener("step_card", (e) => {
    currentCard = e.detail.card;
    const { title, text } = cardText(currentCard);
    $("current-step").hidden = false;
    $("step-title").textContent = `${title} · ${t("step_of", { index: currentCard.index, total: currentCard.total })}`;
    $("step-text").textContent = text;
  });
  signal.addEventListener("step_answered", (e) => {
    const li = document.createElement("li");
    li.textContent = `${e.detail.index}: ${t(`answer_${e.detail.answer}`)}${e.detail.note ? ` (${e.detail.note})` : ""}`;
    li.dataset.answer = e.detail.answer;
    $("step-answers").append(li);
  });
  signal.addEventListener("procedure_finished", (e) => {
    $("step-title").textContent = t("procedure_finished", { outcome: e.detail.outcome, done: e.detail.steps_done, total: e.detail.total });
    $("step-text").textContent = "";
  });
  // Other experts' annotations.
  signal.addEventListener("annotation", (e) => overlay.set(e.detail.shape));
  signal.addEventListener("annotation_moved", (e) => overlay.move(e.detail.shape_id, e.detail.points, e.detail.tracking));
  signal.addEventListener("annotation_removed", (e) => overlay.remove(e.detail.shape_id));
  signal.addEventListener("annotations_cleared", () => overlay.clear());
}
window.addEventListener("fixline:signal", wireGuidance);

// ---- Why the diagnosis says so: the region of a snapshot, the spectrum of a recording ----

/// Fetches an evidence file with the expert's token and decodes it as an image.
async function evidenceImage(evidenceId) {
  const r = await fetch(`/api/v1/work-orders/${workOrderId}/evidence/${evidenceId}`, { headers: { authorization: `Bearer ${signal.token}` } });
  return createImageBitmap(await r.blob());
}

async function showExplanation(evidenceId) {
  const x = await api(`/work-orders/${workOrderId}/evidence/${evidenceId}/explanation`, { token: signal.token });
  const c = $("evidence-canvas");
  const g = c.getContext("2d");
  $("evidence-view").hidden = false;
  const cap = $("evidence-caption");
  cap.dataset.kind = x.kind;
  if (x.kind === "image") {
    const img = await evidenceImage(evidenceId);
    c.width = 320;
    c.height = Math.round((320 * img.height) / img.width);
    g.drawImage(img, 0, 0, c.width, c.height);
    // Importance heat over the square the model looks at, then the region's box.
    const [x0, y0, x1, y1] = x.crop.map((v, i) => v * (i % 2 ? c.height : c.width));
    const n = x.grid;
    const top = Math.max(...x.importance, 1e-9);
    x.importance.forEach((v, i) => {
      g.fillStyle = `rgba(255, 80, 0, ${(0.45 * v) / top})`;
      g.fillRect(x0 + ((i % n) * (x1 - x0)) / n, y0 + (Math.floor(i / n) * (y1 - y0)) / n, (x1 - x0) / n, (y1 - y0) / n);
    });
    if (x.region) {
      const [rx0, ry0, rx1, ry1] = x.region;
      g.strokeStyle = "#ffd60a";
      g.lineWidth = 3;
      g.strokeRect(rx0 * c.width, ry0 * c.height, (rx1 - rx0) * c.width, (ry1 - ry0) * c.height);
      cap.dataset.region = x.region.join(",");
    }
    cap.textContent = t("explain_image", { label: x.label, percent: Math.round(x.probability * 100) });
  } else {
    // Envelope spectrum with the bearing defect frequencies marked.
    const env = x.analysis.envelope;
    c.width = 320;
    c.height = 180;
    g.fillStyle = "#fff";
    g.fillRect(0, 0, c.width, c.height);
    const maxHz = Math.min(env.hz_per_bin * env.amplitude.length, 600);
    const bins = Math.floor(maxHz / env.hz_per_bin);
    const peak = Math.max(...env.amplitude.slice(1, bins), 1e-12);
    g.strokeStyle = "#1f3a5f";
    g.beginPath();
    for (let i = 1; i < bins; i++) {
      const px = (i / bins) * c.width;
      const py = c.height - 14 - (env.amplitude[i] / peak) * (c.height - 30);
      i === 1 ? g.moveTo(px, py) : g.lineTo(px, py);
    }
    g.stroke();
    g.font = "10px system-ui, sans-serif";
    for (const m of env.markers.filter((m) => m.harmonic === 1 && m.hz < maxHz)) {
      const px = (m.hz / maxHz) * c.width;
      g.strokeStyle = "#d9480f";
      g.setLineDash([3, 3]);
      g.beginPath();
      g.moveTo(px, 12);
      g.lineTo(px, c.height - 14);
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = "#d9480f";
      g.fillText(m.name.toUpperCase(), px + 2, 10);
    }
    g.fillStyle = "#4e5969";
    g.fillText(`0 – ${Math.round(maxHz)} Hz`, 4, c.height - 2);
    const h = x.diagnosis.hypotheses[0];
    cap.textContent = t("explain_spectrum", { label: h.label, percent: Math.round(h.probability * 100) });
    cap.dataset.markers = String(env.markers.length);
  }
}

window.addEventListener("fixline:signal", () => {
  signal.addEventListener("live_diagnosis", (e) => {
    if (e.detail.snapshot_evidence_id) showExplanation(e.detail.snapshot_evidence_id).catch((err) => console.warn("explanation", err));
  });
  signal.addEventListener("session_started", async () => {
    // A recording already on the work order: show its spectrum.
    try {
      const list = await api(`/work-orders/${workOrderId}/evidence`, { token: signal.token });
      const tele = list.items.filter((e) => e.kind === "telemetry").pop();
      if (tele) await showExplanation(tele.id);
    } catch (err) {
      console.warn("evidence", err);
    }
  });
});

// ---- A second expert: invite a colleague into the session, or accept an invitation ----
window.addEventListener("fixline:signal", () => {
  signal.addEventListener("session_started", () => {
    $("colleagues-card").hidden = false;
    signal.send({ type: "list_experts" });
  });
  signal.addEventListener("experts", (e) => {
    const ul = $("colleagues");
    ul.replaceChildren();
    for (const x of e.detail.items) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = `${x.name}${x.busy ? ` (${t("busy")})` : ""}`;
      const b = document.createElement("button");
      b.className = "secondary";
      b.textContent = t("invite");
      b.dataset.expert = x.user_id;
      b.onclick = () => signal.send({ type: "invite_expert", user_id: x.user_id });
      li.append(label, b);
      ul.append(li);
    }
  });
  signal.addEventListener("invitation", (e) => {
    $("invitation-card").hidden = false;
    $("invitation-text").textContent = t("invitation", { name: e.detail.from_name, title: e.detail.title });
    $("invitation-join").onclick = () => {
      $("invitation-card").hidden = true;
      signal.send({ type: "join", work_order_id: e.detail.work_order_id });
    };
  });
});
