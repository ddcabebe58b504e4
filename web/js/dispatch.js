// The dispatcher's board: escalated, scheduled and on-site work orders, most urgent
// first (breached ones on top and marked); for a work order waiting for a technician
// the ranked technicians with the score broken down and one Assign button each; the
// live assignment of the others; the safety-stock alerts. Refreshes every 15 s.
import { t, translatePage } from "./i18n.js";
import { $, status } from "./ui.js";
import { Staff, el, fmtDue, fmtNumber, fmtPercent, fmtTime } from "./staff.js";

translatePage();
const staff = new Staff("dispatch", ["dispatcher", "admin"]);
const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") || 15) * 1000;
let names = new Map();
let parts = new Map();
let timer;
let busy = false;

staff.start(async () => {
  $("board-card").hidden = false;
  $("alerts-card").hidden = false;
  $("reload").onclick = () => refresh();
  try {
    const pl = await staff.call("/parts");
    parts = new Map(pl.items.map((p) => [p.sku, p]));
  } catch {}
  await refresh();
});

async function refresh() {
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
  // An action in flight re-renders when it is done.
  if (busy) return;
  try {
    const [board, techs, alerts] = await Promise.all([staff.call("/dispatch/board"), staff.call("/technicians"), staff.call("/stock-alerts")]);
    names = new Map(techs.items.map((x) => [x.user_id, x.display_name]));
    renderBoard(board.items);
    renderAlerts(alerts.items);
    $("updated").textContent = t("updated_at", { time: new Date().toLocaleTimeString() });
  } catch (e) {
    status(e.message);
  }
}

const techName = (id) => names.get(id) || id.slice(0, 8);

function partName(sku) {
  const p = parts.get(sku);
  if (!p) return sku;
  return `${sku} · ${document.documentElement.lang === "zh-CN" ? p.name_zh : p.name_en}`;
}

function renderBoard(items) {
  const box = $("board");
  box.replaceChildren();
  if (!items.length) box.append(el("p", "muted", t("dsp_empty")));
  for (const row of items) box.append(job(row));
}

function job(row) {
  const w = row.work_order;
  const art = el("article", "job");
  art.dataset.workOrder = w.id;
  art.dataset.status = w.status;
  if (w.sla_breached) art.classList.add("breached");
  const head = el("div", "spread");
  const title = el("h3", null, w.title);
  const badges = el("span", "badges");
  badges.append(el("span", `badge prio-${w.priority}`, w.priority), el("span", "badge", t(`tier_${w.tier}`)), el("span", "badge", t(`status_${w.status}`)));
  if (w.sla_breached) badges.append(el("span", "badge danger", t("sla_breached")));
  head.append(title, badges);
  const due = el("p", w.sla_breached ? "due danger" : "due", `${t("resolution_due")}: ${fmtTime(w.resolution_due)} (${fmtDue(w.resolution_due)})`);
  art.append(head, due);
  if (row.assignment) {
    art.append(assignmentLine(row.assignment));
  } else if (w.status === "escalated") {
    art.append(el("p", "status", t("dsp_waiting")));
    art.append(candidates(w.id, row.candidates));
    const more = el("button", "secondary more", t("dsp_more"));
    more.onclick = async () => {
      try {
        const list = await staff.call(`/work-orders/${w.id}/candidates?limit=10`);
        art.querySelector(".candidates").replaceWith(candidates(w.id, list.items));
        more.remove();
      } catch (e) {
        status(e.message);
      }
    };
    if (row.candidates.length) art.append(more);
  }
  return art;
}

function assignmentLine(a) {
  const p = el("p", "assignment");
  p.dataset.assignment = a.id;
  p.dataset.state = a.status;
  p.append(el("span", null, t("dsp_assigned", { name: techName(a.technician_id), state: t(`asg_${a.status}`) })));
  if (a.auto) p.append(el("span", "badge", t("dsp_auto")));
  if (["offered", "accepted", "en_route"].includes(a.status)) {
    const b = el("button", "secondary", t("dsp_withdraw"));
    b.onclick = () => act(b, `/assignments/${a.id}/withdraw`, undefined, t("dsp_withdrawn"));
    p.append(b);
  }
  return p;
}

function candidates(workOrder, list) {
  const ul = el("ul", "candidates");
  if (!list.length) ul.append(el("li", "muted", t("dsp_no_candidates")));
  list.forEach((c, i) => {
    const li = el("li", c.excluded ? "candidate excluded" : "candidate");
    li.dataset.technician = c.technician_id;
    const top = el("div", "spread");
    top.append(el("strong", null, `${i + 1}. ${c.display_name || techName(c.technician_id)}`), el("span", "score", `${t("score")} ${fmtPercent(c.score)}`));
    li.append(top);
    const dl = el("dl", "scores");
    const add = (k, v) => dl.append(el("dt", null, t(k)), el("dd", null, v));
    for (const k of ["skill", "travel", "load", "sla", "region"]) add(`score_${k}`, fmtPercent(c.breakdown[k]));
    add("travel_minutes", t("minutes", { n: fmtNumber(c.travel_minutes, 0) }));
    add("arrival", fmtTime(c.arrival));
    add("meets_sla", c.meets_sla ? t("yes") : t("no"));
    li.append(dl);
    if (c.excluded) {
      li.append(el("p", "muted", c.excluded));
    } else {
      const b = el("button", "assign", t("dsp_assign"));
      b.dataset.technician = c.technician_id;
      b.onclick = () => act(b, `/work-orders/${workOrder}/assignments`, { technician_id: c.technician_id }, t("dsp_offered", { name: c.display_name || techName(c.technician_id) }));
      li.append(b);
    }
    ul.append(li);
  });
  return ul;
}

/// One action: the button is disabled while it runs; the board is reloaded after.
async function act(button, path, body, done) {
  busy = true;
  button.disabled = true;
  try {
    await staff.call(path, { method: "POST", body });
    status(done);
  } catch (e) {
    status(e.message);
  } finally {
    busy = false;
    await refresh();
  }
}

function renderAlerts(items) {
  const ul = $("alerts");
  ul.replaceChildren();
  if (!items.length) ul.append(el("li", "muted", t("dsp_no_alerts")));
  for (const a of items) {
    const li = el("li", "alert");
    li.dataset.sku = a.sku;
    li.append(el("strong", null, partName(a.sku)), el("span", null, t("dsp_alert_line", { warehouse: a.warehouse, available: a.available, level: a.reorder_level })));
    ul.append(li);
  }
}
