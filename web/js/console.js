// The expert console: log in, see the queue (most urgent first), accept a call, watch
// the customer's camera with the live diagnosis, chat, snapshot, end with an outcome.
import { t, translatePage } from "./i18n.js";
import { Signal, api } from "./signal.js";
import { $, log, status } from "./ui.js";

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
