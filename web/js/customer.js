// The customer's page: redeem the invite link, show the camera, wait in the queue,
// talk to the expert, follow camera controls the expert asks for.
import { t, translatePage } from "./i18n.js";
import { Signal, api } from "./signal.js";
import { $, log, status } from "./ui.js";
import { Overlay } from "./overlay.js";

translatePage();

const inviteToken = new URLSearchParams(location.hash.slice(1)).get("token");
let session;
try {
  session = JSON.parse(sessionStorage.getItem("fixline.customer") || "null");
  if (!session && inviteToken) {
    session = await api("/auth/invite", { method: "POST", body: { token: inviteToken } });
    sessionStorage.setItem("fixline.customer", JSON.stringify(session));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const wo = await api(`/work-orders/${session.work_order_id}`, { token: session.access_token });
  $("wo-title").textContent = wo.title;
} catch {
  status(t("join_invalid"));
  $("start").disabled = true;
}

let stream;
let facing = "environment";

async function camera() {
  return navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing }, width: { ideal: 1280 } }, audio: true });
}

async function control({ action, value }) {
  const track = stream && stream.getVideoTracks()[0];
  if (!track) return;
  const caps = track.getCapabilities ? track.getCapabilities() : {};
  if (action === "torch") {
    if (caps.torch) await track.applyConstraints({ advanced: [{ torch: !!value }] });
    else status(t("torch_unsupported"));
  } else if (action === "zoom" && caps.zoom) {
    await track.applyConstraints({ advanced: [{ zoom: Number(value) }] });
  } else if (action === "mute" || action === "unmute") {
    for (const a of stream.getAudioTracks()) a.enabled = action === "unmute";
  }
}

$("start").onclick = async () => {
  $("start").disabled = true;
  try {
    stream = await camera();
  } catch {
    status(t("join_camera_denied"));
    $("start").disabled = false;
    return;
  }
  $("preview").srcObject = stream;
  status(t("connecting"));
  const signal = new Signal(session.access_token);
  await signal.connect();
  signal.addEventListener("queue_position", (e) =>
    status(t("queue_position", { position: e.detail.position, minutes: Math.ceil(e.detail.eta_seconds / 60) })));
  signal.addEventListener("session_started", async (e) => {
    const expert = e.detail.participants.find((p) => p.part === "expert");
    status(t("expert_joined", { name: expert ? expert.name : t("expert") }));
    await signal.publish(stream, (msg) => msg.type === "chat" && log(t("expert"), msg.text));
  });
  signal.addEventListener("tracks_changed", () =>
    signal.subscribe((track, s) => { if (track.kind === "audio") $("remote-audio").srcObject = s; }));
  signal.addEventListener("chat", (e) => log(t("expert"), e.detail.text));
  // The expert's annotations over my own camera picture, and the step cards.
  const overlay = new Overlay($("preview"), $("preview-overlay"));
  window.fixlineDebug = window.fixlineDebug || {};
  window.fixlineDebug.annotations = [];
  overlay.onRendered = (shape) => {
    if (shape.sent_at) window.fixlineDebug.annotations.push({ id: shape.id, latencyMs: Date.now() - shape.sent_at });
  };
  signal.addEventListener("annotation", (e) => overlay.set(e.detail.shape));
  signal.addEventListener("annotation_moved", (e) => overlay.move(e.detail.shape_id, e.detail.points, e.detail.tracking));
  signal.addEventListener("annotation_removed", (e) => overlay.remove(e.detail.shape_id));
  signal.addEventListener("annotations_cleared", () => overlay.clear());
  let card = null;
  signal.addEventListener("step_card", (e) => showCard((card = e.detail.card)));
  signal.addEventListener("procedure_finished", () => ($("step-card").hidden = true));
  for (const answer of ["done", "failed", "cannot"]) {
    $(`answer-${answer}`).onclick = () => {
      if (!card) return;
      signal.send({ type: "step_answer", procedure_id: card.procedure_id, index: card.index, answer });
      if (answer !== "done") status(t("answer_sent"));
    };
  }
  signal.addEventListener("control", (e) => control(e.detail));
  signal.addEventListener("ended", (e) => {
    status(t("session_ended", { outcome: e.detail.outcome }));
    for (const tr of stream.getTracks()) tr.stop();
  });
  signal.send({ type: "queue", work_order_id: session.work_order_id });
  $("chat-form").onsubmit = (ev) => {
    ev.preventDefault();
    const text = $("chat-input").value.trim();
    if (!text) return;
    signal.sendChat(text);
    log(t("you"), text);
    $("chat-input").value = "";
  };
};

/// Shows one step card over the video, in the page's language.
function showCard(card) {
  const zh = document.documentElement.lang === "zh-CN";
  const s = card.step;
  $("step-card").hidden = false;
  $("card-count").textContent = t("step_of", { index: card.index, total: card.total });
  $("card-title").textContent = zh ? card.title_zh : card.title_en;
  $("card-text").textContent = zh ? s.instruction_zh : s.instruction_en;
  $("card-check").textContent = `${t("check")}: ${zh ? s.check_zh : s.check_en}`;
  const safety = $("card-safety");
  safety.hidden = !s.safety;
  if (s.safety) safety.textContent = `⚠ ${zh ? s.safety.text_zh : s.safety.text_en}`;
  const img = $("card-image");
  img.hidden = !s.image;
  if (s.image) img.src = `/api/v1/knowledge/${s.image}`;
  $("step-card").dataset.index = String(card.index);
}
