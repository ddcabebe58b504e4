// The onsite technician's page: my jobs; for one, the dossier (customer, site, asset,
// diagnosis, escalation reason and availability, reserved parts, history), accept or
// decline, en route / on site, and the visit report (checklist, parts used, the
// customer's sign-off, outcome).
import { t, translatePage } from "./i18n.js";
import { $, status } from "./ui.js";
import { Staff, el, fmtPercent, fmtTime } from "./staff.js";

translatePage();
const staff = new Staff("technician", ["technician", "admin"]);
const OPEN = ["offered", "accepted", "en_route", "on_site"];
const titles = new Map();
let parts = new Map();
let current = null;

staff.start(async () => {
  $("reload").onclick = () => showList();
  $("back").onclick = () => showList();
  try {
    const pl = await staff.call("/parts");
    parts = new Map(pl.items.map((p) => [p.sku, p]));
  } catch {}
  await showList();
});

const zh = () => document.documentElement.lang === "zh-CN";
const partName = (sku) => {
  const p = parts.get(sku);
  return p ? `${zh() ? p.name_zh : p.name_en} (${sku})` : sku;
};

async function title(workOrder) {
  if (!titles.has(workOrder)) {
    try {
      const w = await staff.call(`/work-orders/${workOrder}`);
      titles.set(workOrder, w);
    } catch {
      return { title: workOrder, priority: "" };
    }
  }
  return titles.get(workOrder);
}

async function showList() {
  current = null;
  $("job-card").hidden = true;
  $("list-card").hidden = false;
  const ul = $("jobs");
  try {
    const list = await staff.call("/assignments?state=all");
    // Open jobs first (newest first within each), then the last finished ones.
    const open = list.items.filter((a) => OPEN.includes(a.status));
    const past = list.items.filter((a) => !OPEN.includes(a.status)).slice(0, 10);
    ul.replaceChildren();
    if (!open.length) ul.append(el("li", "muted", t("tech_no_jobs")));
    for (const a of [...open, ...past]) {
      const w = await title(a.work_order_id);
      const li = el("li", OPEN.includes(a.status) ? "job-item" : "job-item past");
      li.dataset.assignment = a.id;
      const b = el("button", "link");
      b.append(el("strong", null, w.title), el("span", "badge", t(`asg_${a.status}`)));
      if (w.priority) b.append(el("span", `badge prio-${w.priority}`, w.priority));
      b.onclick = () => showJob(a.id);
      li.append(b);
      ul.append(li);
    }
  } catch (e) {
    status(e.message);
  }
}

async function showJob(id) {
  const list = await staff.call("/assignments?state=all");
  const a = list.items.find((x) => x.id === id);
  if (!a) return showList();
  const d = await staff.call(`/work-orders/${a.work_order_id}/dossier`);
  current = { a, d };
  $("list-card").hidden = true;
  $("job-card").hidden = false;
  $("job-card").dataset.assignment = a.id;
  $("job-card").dataset.state = a.status;
  $("job-title").textContent = d.work_order.title;
  $("job-meta").textContent = `${d.work_order.priority} · ${t(`status_${d.work_order.status}`)} · ${t("resolution_due")}: ${fmtTime(d.work_order.resolution_due)}`;
  renderActions(a);
  renderDossier(d);
  $("report-form").hidden = a.status !== "on_site";
  if (a.status === "on_site") renderReport(d);
}

function renderActions(a) {
  const box = $("actions");
  box.replaceChildren();
  const button = (key, cls, run) => {
    const b = el("button", cls, t(key));
    b.id = `act-${key}`;
    b.onclick = async () => {
      for (const x of box.querySelectorAll("button")) x.disabled = true;
      try {
        await run();
        status(t(`${key}_done`));
      } catch (e) {
        status(e.message);
      }
      await showJob(a.id);
    };
    box.append(b);
  };
  box.append(el("span", "badge", t(`asg_${a.status}`)));
  if (a.status === "offered") {
    button("tech_accept", "", () => staff.call(`/assignments/${a.id}/answer`, { method: "POST", body: { accept: true } }));
    const reason = el("input");
    reason.id = "decline-reason";
    reason.placeholder = t("tech_decline_reason");
    reason.maxLength = 1000;
    box.append(reason);
    button("tech_decline", "secondary", () => staff.call(`/assignments/${a.id}/answer`, { method: "POST", body: { accept: false, reason: reason.value || undefined } }));
  }
  if (a.status === "accepted") button("tech_en_route", "", () => staff.call(`/assignments/${a.id}/progress`, { method: "POST", body: { stage: "en_route" } }));
  if (a.status === "accepted" || a.status === "en_route") {
    button("tech_on_site", a.status === "accepted" ? "secondary" : "", () => staff.call(`/assignments/${a.id}/progress`, { method: "POST", body: { stage: "on_site" } }));
  }
}

function section(key, ...children) {
  const s = el("section", "dossier-part");
  s.dataset.part = key;
  s.append(el("h3", null, t(key)), ...children);
  return s;
}

function facts(pairs) {
  const dl = el("dl", "facts");
  for (const [k, v] of pairs) if (v !== null && v !== undefined && v !== "") dl.append(el("dt", null, t(k)), el("dd", null, v));
  return dl;
}

function renderDossier(d) {
  const box = $("dossier");
  box.replaceChildren();
  const c = d.customer || {};
  box.append(section("tech_customer", facts([["tech_name", c.name], ["tech_tier", c.tier && t(`tier_${c.tier}`)], ["tech_phone", c.contact_phone], ["tech_email", c.contact_email]])));
  const s = d.site;
  if (s) {
    const map = el("a", null, t("tech_map"));
    map.href = `geo:${s.latitude},${s.longitude}`;
    box.append(section("tech_site", facts([["tech_name", s.name], ["tech_address", s.address], ["tech_region", s.region]]), map));
  }
  const as = d.asset;
  if (as) {
    box.append(section("tech_asset", facts([["tech_product_line", d.product_line], ["tech_model", as.model], ["tech_serial", as.serial_number],
      ["tech_warranty", as.under_warranty === undefined ? null : as.under_warranty ? t("yes") : t("no")]])));
  }
  const hyp = el("ul", "plain");
  for (const h of d.diagnosis.hypotheses.slice(0, 5)) {
    const li = el("li", "hyp");
    li.append(el("span", null, h.fault_id), el("span", null, fmtPercent(h.confidence)));
    hyp.append(li);
  }
  if (!d.diagnosis.hypotheses.length) hyp.append(el("li", "muted", t("tech_no_diagnosis")));
  box.append(section("tech_diagnosis", hyp));
  const esc = d.escalations[d.escalations.length - 1];
  if (esc) {
    const p = esc.payload;
    box.append(section("tech_escalation", facts([["tech_reason", p.reason], ["tech_availability", p.availability], ["tech_escalated_at", fmtTime(esc.occurred_at)]])));
  }
  const res = el("ul", "plain");
  res.id = "reservations";
  for (const r of d.reservations) {
    const li = el("li", "reservation", `${partName(r.sku)} × ${r.quantity} · ${r.warehouse} · ${t(`res_${r.status}`)}`);
    li.dataset.sku = r.sku;
    res.append(li);
  }
  if (!d.reservations.length) res.append(el("li", "muted", t("tech_no_parts")));
  box.append(section("tech_parts", res));
  const hist = el("ul", "plain history");
  for (const e of d.history) hist.append(el("li", null, `${fmtTime(e.occurred_at)} · ${eventLabel(e.kind)}${summary(e.payload)}`));
  if (!d.history.length) hist.append(el("li", "muted", t("tech_no_history")));
  box.append(section("tech_history", hist));
}

/// The event's name; a kind this page has no string for is shown as it is.
function eventLabel(kind) {
  const s = t(`ev_${kind}`);
  return s === `ev_${kind}` ? kind.replaceAll("_", " ") : s;
}

function summary(p) {
  switch (p.kind) {
    case "session_ended": return `: ${t(`outcome_${p.outcome}`)}`;
    case "note_added": return `: ${p.text}`;
    case "visit_report": return `: ${t(`outcome_${p.outcome}`)}${p.signed_by ? ` (${p.signed_by})` : ""}`;
    case "parts_reserved":
    case "parts_consumed": return `: ${p.lines.map((l) => `${l.sku} × ${l.quantity}`).join(", ")}`;
    case "assignment_answered": return `: ${t(`asg_${p.answer}`)}${p.reason ? ` (${p.reason})` : ""}`;
    default: return "";
  }
}

/// Checklist items: the visit procedure's steps (in the page's language), then items
/// from earlier visits of this work order (steps already tried).
function earlierSteps(d) {
  const zh = document.documentElement.lang === "zh-CN";
  const items = (d.checklist || []).map((c) => (zh ? c.zh : c.en));
  for (const e of d.history) {
    if (e.kind !== "visit_report") continue;
    for (const c of e.payload.checklist) if (!items.includes(c.item)) items.push(c.item);
  }
  return items;
}

function checklistItem(text) {
  const row = el("div", "check-item");
  const label = el("label", "check");
  const box = el("input");
  box.type = "checkbox";
  label.append(box, el("span", null, text));
  const note = el("input", "note");
  note.placeholder = t("tech_item_note");
  note.maxLength = 1000;
  row.append(label, note);
  row.dataset.item = text;
  return row;
}

function renderReport(d) {
  const list = $("checklist");
  list.replaceChildren(...earlierSteps(d).map(checklistItem));
  $("checklist-add").onclick = () => {
    const v = $("checklist-new").value.trim();
    if (!v) return;
    list.append(checklistItem(v));
    $("checklist-new").value = "";
  };
  const used = $("parts-used");
  used.replaceChildren();
  const reserved = d.reservations.filter((r) => r.status === "reserved");
  if (!reserved.length) used.append(el("p", "muted", t("tech_no_parts")));
  for (const r of reserved) {
    const row = el("label", "part-used");
    const n = el("input");
    n.type = "number";
    n.min = "0";
    n.max = String(r.quantity);
    n.value = "0";
    n.dataset.sku = r.sku;
    n.setAttribute("aria-label", partName(r.sku));
    row.append(el("span", null, `${partName(r.sku)} (${t("tech_reserved_n", { n: r.quantity })})`), n);
    used.append(row);
  }
  $("report-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const outcome = document.querySelector("input[name=outcome]:checked");
    if (!outcome) return status(t("tech_pick_outcome"));
    const checklist = [...list.querySelectorAll(".check-item")].map((row) => ({
      item: row.dataset.item,
      done: row.querySelector("input[type=checkbox]").checked,
      note: row.querySelector("input.note").value.trim() || null,
    }));
    const partsUsed = [...used.querySelectorAll("input[type=number]")]
      .map((i) => ({ sku: i.dataset.sku, quantity: Number(i.value) }))
      .filter((p) => p.quantity > 0);
    const body = { outcome: outcome.value, checklist, parts_used: partsUsed, signed_by: $("signed-by").value.trim() || null, notes: $("notes").value.trim() || null };
    $("report-submit").disabled = true;
    try {
      await staff.call(`/assignments/${current.a.id}/report`, { method: "POST", body });
      status(t("tech_report_done", { outcome: t(`outcome_${outcome.value}`) }));
      $("report-form").reset();
      await showJob(current.a.id);
    } catch (e) {
      status(e.message);
    } finally {
      $("report-submit").disabled = false;
    }
  };
}
