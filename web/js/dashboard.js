// The service dashboard: pick a period and a grouping, see the KPI tiles, a bar chart
// (hand-drawn SVG) overall or per group, the figures per group, and the follow-up
// calls that are due. Definitions of the figures: docs/kpis.md.
import { t, translatePage } from "./i18n.js";
import { $, status } from "./ui.js";
import { Staff, el, fmtNumber, fmtPercent, fmtTime } from "./staff.js";

translatePage();
const staff = new Staff("admin", ["admin", "dispatcher"]);
const SHARES = ["remote_resolution", "first_time_fix", "sla_resolution", "sla_first_response"];
const titles = new Map();
let report = null;

staff.start(async () => {
  for (const id of ["controls-card", "tiles-card", "charts-card", "follow-ups-card"]) $(id).hidden = false;
  $("period").onchange = () => {
    for (const l of document.querySelectorAll("label.custom")) l.hidden = $("period").value !== "custom";
    if ($("period").value !== "custom") load();
  };
  $("group-by").onchange = () => load();
  $("metric").onchange = () => renderChart();
  $("controls").onsubmit = (e) => {
    e.preventDefault();
    load();
  };
  await load();
});

function query() {
  const q = new URLSearchParams();
  const p = $("period").value;
  if (p === "custom") {
    if ($("from").value) q.set("from", $("from").value);
    if ($("to").value) q.set("to", $("to").value);
  } else {
    q.set("from", new Date(Date.now() - Number(p) * 86400000).toISOString());
  }
  if ($("group-by").value) q.set("group_by", $("group-by").value);
  return q.toString();
}

async function load() {
  status(t("loading"));
  try {
    report = await staff.call(`/kpis?${query()}`);
    $("range").textContent = t("dash_range", { from: fmtTime(report.from), to: fmtTime(report.to) });
    renderTiles(report.overall);
    renderChart();
    renderGroups();
    status("");
  } catch (e) {
    status(e.message);
  }
  await loadFollowUps();
}

/// The headline value of a figure, its bar length in 0..1 of `max`, and a subtitle.
function metric(f, key) {
  switch (key) {
    case "work_orders": return { value: f.work_orders, text: String(f.work_orders) };
    case "first_response": {
      const r = f.first_response;
      return { value: r.median_minutes, text: r.median_minutes === null ? "—" : t("minutes", { n: fmtNumber(r.median_minutes) }),
        sub: t("kpi_first_response_sub", { mean: fmtNumber(r.mean_minutes), n: r.responded }) };
    }
    case "repair": {
      const r = f.repair;
      return { value: r.mean_hours, text: r.mean_hours === null ? "—" : t("hours", { n: fmtNumber(r.mean_hours) }), sub: t("kpi_repair_sub", { n: r.resolved }) };
    }
    case "satisfaction": {
      const s = f.satisfaction;
      return { value: s.mean_rating, max: 5, text: s.mean_rating === null ? "—" : `${fmtNumber(s.mean_rating)} / 5`,
        sub: t("kpi_satisfaction_sub", { n: s.answers, complaints: s.complaints }) };
    }
    default: {
      const s = f[key];
      return { value: s.rate, max: 1, text: fmtPercent(s.rate), sub: t(`kpi_${key}_sub`, { count: s.count, total: s.total }) };
    }
  }
}

function renderTiles(f) {
  const box = $("tiles");
  box.replaceChildren();
  for (const key of ["work_orders", "first_response", "remote_resolution", "first_time_fix", "repair", "sla_resolution", "sla_first_response", "satisfaction"]) {
    const m = metric(f, key);
    const tile = el("div", "tile");
    tile.dataset.kpi = key;
    tile.append(el("span", "label", t(`kpi_${key}`)), el("strong", "value", m.text));
    if (m.sub) tile.append(el("span", "sub", m.sub));
    box.append(tile);
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/// Horizontal bars: [{ label, value, max, text }].
/// Drawn at the container's width in CSS pixels, so text keeps its size on any screen.
function bars(rows, caption, containerWidth) {
  const rowH = 30;
  const width = Math.round(Math.max(280, Math.min(containerWidth || 600, 900)));
  const labelW = Math.round(Math.min(240, width * 0.38));
  const valueW = 70;
  const height = rows.length * rowH + 8;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": caption, class: "bars" });
  root.append(svg("title", {}, caption));
  const top = Math.max(...rows.map((r) => (r.max !== undefined ? r.max : r.value || 0)), 1e-9);
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    const g = svg("g", { "data-label": r.label });
    const scale = r.max !== undefined ? r.max : top;
    const len = r.value === null || r.value === undefined ? 0 : Math.max(0, Math.min(1, r.value / scale)) * (width - labelW - valueW);
    g.append(
      svg("text", { x: labelW - 8, y: y + rowH / 2 + 5, "text-anchor": "end", class: "bar-label" }, clip(r.label, labelW)),
      svg("rect", { x: labelW, y: y + 4, width: width - labelW - valueW, height: rowH - 10, rx: 4, class: "bar-track" }),
      svg("rect", { x: labelW, y: y + 4, width: len.toFixed(1), height: rowH - 10, rx: 4, class: "bar" }),
      svg("text", { x: width - valueW + 8, y: y + rowH / 2 + 5, class: "bar-value" }, r.text),
    );
    g.append(svg("title", {}, `${r.label}: ${r.text}`));
    root.append(g);
  });
  return root;
}

/// Shortens a label to fit `px` (about 8 px per Latin character, 15 per CJK one).
function clip(label, px) {
  let w = 0;
  for (let i = 0; i < label.length; i++) {
    w += label.charCodeAt(i) > 0x2e80 ? 15 : 8;
    if (w > px - 16) return `${label.slice(0, Math.max(1, i - 1))}…`;
  }
  return label;
}

let resizeTimer;
addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(renderChart, 150);
});

function renderChart() {
  const box = $("chart");
  box.replaceChildren();
  const w = box.clientWidth;
  if (!report) return;
  const grouped = report.groups.length > 0;
  $("metric").closest("label").hidden = !grouped;
  if (!grouped) {
    // Overall: every rate side by side (satisfaction as a share of 5 stars).
    const rows = [...SHARES, "satisfaction"].map((k) => ({ label: t(`kpi_${k}`), ...metric(report.overall, k) }));
    box.append(bars(rows, t("dash_chart_overall"), w));
    return;
  }
  const key = $("metric").value;
  const rows = report.groups.map((g) => ({ label: groupLabel(g), ...metric(g.figures, key) }));
  box.append(bars(rows, t("dash_chart_by", { metric: t(`kpi_${key}`), group: t(`dash_group_${report.group_by}`) }), w));
}

const groupLabel = (g) => (g.key === "unknown" ? t("dash_unknown") : g.label);

function renderGroups() {
  const box = $("groups");
  box.replaceChildren();
  if (!report.groups.length) return;
  const wrap = el("div", "table-wrap");
  const table = el("table", "figures");
  const cols = ["work_orders", "first_response", "remote_resolution", "first_time_fix", "repair", "sla_resolution", "sla_first_response", "satisfaction"];
  const head = el("tr");
  head.append(el("th", null, t(`dash_group_${report.group_by}`)), ...cols.map((c) => el("th", null, t(`kpi_${c}`))));
  table.append(head);
  for (const g of report.groups) {
    const tr = el("tr");
    tr.dataset.group = g.key;
    tr.append(el("th", null, groupLabel(g)), ...cols.map((c) => el("td", null, metric(g.figures, c).text)));
    table.append(tr);
  }
  wrap.append(table);
  box.append(wrap);
}

async function loadFollowUps() {
  const ul = $("follow-ups");
  try {
    const list = await staff.call("/follow-ups");
    ul.replaceChildren();
    if (!list.items.length) ul.append(el("li", "muted", t("dash_no_follow_ups")));
    for (const f of list.items.slice(0, 30)) ul.append(await followUp(f));
  } catch (e) {
    ul.replaceChildren(el("li", "muted", e.message));
  }
}

async function followUp(f) {
  if (!titles.has(f.work_order_id)) {
    const w = await staff.call(`/work-orders/${f.work_order_id}`).catch(() => null);
    titles.set(f.work_order_id, w ? w.title : f.work_order_id);
  }
  const li = el("li", f.complaint ? "follow-up complaint" : "follow-up");
  li.dataset.workOrder = f.work_order_id;
  const head = el("div", "spread");
  head.append(el("strong", null, titles.get(f.work_order_id)));
  const badges = el("span", "badges");
  if (f.complaint) badges.append(el("span", "badge danger", t("dash_complaint")));
  badges.append(el("span", "badge", f.rating ? "★".repeat(f.rating) : t("dash_not_answered")));
  head.append(badges);
  li.append(head, el("p", "muted", t("dash_follow_up_due", { time: fmtTime(f.follow_up_due) })));
  if (f.comment) li.append(el("blockquote", null, f.comment));
  const form = el("form", "row");
  const note = el("input");
  note.placeholder = t("dash_follow_up_note");
  note.maxLength = 2000;
  note.required = true;
  const b = el("button", null, t("dash_follow_up_done"));
  form.append(note, b);
  form.onsubmit = async (e) => {
    e.preventDefault();
    b.disabled = true;
    try {
      await staff.call(`/follow-ups/${f.id}/done`, { method: "POST", body: { note: note.value } });
      status(t("dash_follow_up_recorded"));
      await loadFollowUps();
    } catch (err) {
      status(err.message);
      b.disabled = false;
    }
  };
  li.append(form);
  return li;
}
