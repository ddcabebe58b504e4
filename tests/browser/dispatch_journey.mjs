// The onsite journey in headless Chromium (Debian's), driven by playwright-core:
// a live call (customer on /join, expert on /console) ending with "Needs a technician",
// the escalation with a part, the dispatcher assigning on /dispatch, the technician
// accepting and reporting on /technician (in Chinese), the customer rating on /survey,
// and the new figures on /admin (in English, then Chinese).
//   node dispatch_journey.mjs '<json: base, inviteUrl, workOrder, y4m, sku, title,
//     expert, dispatcher, technician, admin ({ username, password, name, id? }), adminToken,
//     customerName, siteName>'
// Prints one JSON line with what it saw; exits non-zero on the first failed step.
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const out = {};
const step = (name) => {
  out.step = name;
  console.error(`step: ${name}`);
};
const timeout = 20_000;

async function api(path, { method = "GET", token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body) headers["content-type"] = "application/json";
  const r = await fetch(`${cfg.base}/api/v1${path}`, { method, headers, body: body && JSON.stringify(body) });
  const data = r.status === 204 ? null : await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}

async function until(what, f, ms = timeout) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function login(page, who) {
  await page.fill("#username", who.username);
  await page.fill("#password", who.password);
  await page.click("#login-form button");
}

const text = (page, sel) => page.locator(sel).first().innerText({ timeout });
// FIXLINE_SCREENSHOTS=<dir> keeps a full-page screenshot of each page (to look at the layout).
const shot = async (page, name) => process.env.FIXLINE_SCREENSHOTS && page.screenshot({ path: `${process.env.FIXLINE_SCREENSHOTS}/${name}.png`, fullPage: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${cfg.y4m}`,
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ],
});
const wo = cfg.workOrder;
try {
  step("a live call: the customer joins, the expert accepts and sees the camera");
  const customerCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "zh-CN" });
  const customer = await customerCtx.newPage();
  customer.on("console", (m) => m.type() === "error" && console.error("customer:", m.text()));
  await customer.goto(cfg.inviteUrl);
  await customer.waitForFunction(() => document.getElementById("wo-title").textContent.length > 0, null, { timeout });
  await customer.click("#start");
  await customer.waitForFunction(() => /1/.test(document.getElementById("status").textContent), null, { timeout });
  const expertCtx = await browser.newContext({ locale: "en-US" });
  const expert = await expertCtx.newPage();
  expert.on("console", (m) => m.type() === "error" && console.error("expert:", m.text()));
  await expert.goto(`${cfg.base}/console`);
  await login(expert, cfg.expert);
  await expert.click(`button[data-work-order="${wo}"]`, { timeout });
  await expert.waitForFunction(() => {
    const v = document.getElementById("remote");
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
  }, null, { timeout });
  out.videoFrames = await expert.evaluate(() => document.getElementById("remote").getVideoPlaybackQuality().totalVideoFrames);

  step("the expert ends the call with Needs a technician");
  await expert.click("#end-escalate");
  await customer.waitForFunction(() => /needs_escalation/.test(document.getElementById("status").textContent), null, { timeout });
  await customerCtx.close();
  await expertCtx.close();
  const expertAuth = await api("/auth/login", { method: "POST", body: { username: cfg.expert.username, password: cfg.expert.password } });
  await until("the work order to be escalated", async () => (await api(`/work-orders/${wo}`, { token: expertAuth.access_token })).status === "escalated");

  step("the expert adds the escalation context with the part");
  await api(`/work-orders/${wo}/escalate`, {
    method: "POST",
    token: expertAuth.access_token,
    body: { reason: "Outer-race defect seen on video; the bearing set must be replaced", availability: "Weekdays 8:00-17:00", parts: [{ sku: cfg.sku, quantity: 1 }] },
  });

  step("the dispatcher sees the board and assigns by clicking");
  const dispatchCtx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const dispatch = await dispatchCtx.newPage();
  dispatch.on("console", (m) => m.type() === "error" && console.error("dispatch:", m.text()));
  await dispatch.goto(`${cfg.base}/dispatch`);
  out.dispatchHeading = await text(dispatch, "h1");
  await login(dispatch, cfg.dispatcher);
  const job = `article[data-work-order="${wo}"]`;
  await dispatch.waitForSelector(`${job} li.candidate[data-technician="${cfg.technician.id}"]`, { timeout });
  out.boardJob = await text(dispatch, job);
  out.boardAlerts = await text(dispatch, "#alerts");
  await shot(dispatch, "dispatch-waiting");
  await dispatch.click(`${job} button.assign[data-technician="${cfg.technician.id}"]`);
  await dispatch.waitForSelector(`${job} p.assignment[data-state="offered"]`, { timeout });
  out.boardAssignment = await text(dispatch, `${job} p.assignment`);
  out.dispatchStatus = await text(dispatch, "#status");

  step("the technician reads the dossier, accepts and travels (in Chinese)");
  const techCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "zh-CN" });
  const tech = await techCtx.newPage();
  tech.on("console", (m) => m.type() === "error" && console.error("technician:", m.text()));
  await tech.goto(`${cfg.base}/technician`);
  out.techHeading = await text(tech, "h1");
  await login(tech, cfg.technician);
  await tech.click("li.job-item button", { timeout });
  await tech.waitForSelector('#job-card[data-state="offered"]', { timeout });
  out.techTitle = await text(tech, "#job-title");
  out.dossier = await text(tech, "#dossier");
  out.techActions = await text(tech, "#actions");
  await shot(tech, "technician-dossier");
  await tech.click("#act-tech_accept");
  await tech.waitForSelector('#job-card[data-state="accepted"]', { timeout });
  await tech.click("#act-tech_en_route");
  await tech.waitForSelector('#job-card[data-state="en_route"]', { timeout });
  // The dispatcher's board follows the visit.
  await dispatch.click("#reload");
  await dispatch.waitForSelector(`${job} p.assignment[data-state="en_route"]`, { timeout });
  out.boardEnRoute = await text(dispatch, `${job} p.assignment`);
  await tech.click("#act-tech_on_site");
  await tech.waitForSelector('#job-card[data-state="on_site"]', { timeout });

  step("the technician reports the visit");
  await tech.waitForSelector("#report-form:not([hidden])", { timeout });
  out.reportForm = await text(tech, "#report-form");
  await shot(tech, "technician-report");
  await tech.fill("#checklist-new", "更换主轴轴承");
  await tech.click("#checklist-add");
  await tech.fill("#checklist-new", "振动复测低于 2 mm/s");
  await tech.click("#checklist-add");
  for (const box of await tech.locator("#checklist .check-item input[type=checkbox]").all()) await box.check();
  await tech.fill(`#parts-used input[data-sku="${cfg.sku}"]`, "1");
  await tech.fill("#signed-by", "赵敏");
  await tech.check('input[name=outcome][value="fixed"]');
  await tech.click("#report-submit");
  await tech.waitForSelector('#job-card[data-state="done"]', { timeout });
  out.techDone = await text(tech, "#status");
  await dispatchCtx.close();
  await techCtx.close();

  step("the customer rates the service from the survey link");
  const sent = await until("the survey_sent event", async () => {
    const ev = await api(`/work-orders/${wo}/events?limit=200`, { token: cfg.adminToken });
    return ev.items.find((e) => e.kind === "survey_sent");
  });
  out.surveyUrl = sent.payload.url;
  const surveyCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US" });
  const survey = await surveyCtx.newPage();
  await survey.goto(sent.payload.url);
  await survey.waitForFunction(() => document.getElementById("wo-title").textContent.length > 0, null, { timeout });
  await survey.click('.star[data-rating="5"]');
  await survey.fill("#comment", "Fixed in one visit, thank you");
  await survey.click("#submit");
  await survey.waitForFunction(() => /Thank you/.test(document.getElementById("status").textContent), null, { timeout });
  out.surveyStatus = await text(survey, "#status");
  await surveyCtx.close();

  step("the admin sees the new figures on the dashboard");
  const adminCtx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const admin = await adminCtx.newPage();
  admin.on("console", (m) => m.type() === "error" && console.error("admin:", m.text()));
  await admin.goto(`${cfg.base}/admin`);
  await login(admin, cfg.admin);
  const tile = (k, part) => `.tile[data-kpi="${k}"] .${part}`;
  await admin.waitForSelector(tile("satisfaction", "value"), { timeout });
  out.tiles = {};
  for (const k of ["work_orders", "first_time_fix", "satisfaction", "remote_resolution", "sla_resolution"]) {
    out.tiles[k] = { label: await text(admin, tile(k, "label")), value: await text(admin, tile(k, "value")), sub: await text(admin, tile(k, "sub")).catch(() => "") };
  }
  await admin.waitForSelector(`#follow-ups li[data-work-order="${wo}"]`, { timeout });
  out.followUp = await text(admin, `#follow-ups li[data-work-order="${wo}"]`);
  out.overallChart = await admin.locator("#chart svg g[data-label]").evaluateAll((gs) => gs.map((g) => g.getAttribute("data-label")));
  await admin.selectOption("#group-by", "expert");
  await admin.waitForSelector(`#chart svg g[data-label="${cfg.expert.name}"]`, { timeout });
  out.expertRow = await text(admin, "#groups tr[data-group]");
  await admin.selectOption("#metric", "first_time_fix");
  await shot(admin, "admin-expert");
  out.expertChart = await admin.locator(`#chart svg g[data-label="${cfg.expert.name}"] .bar-value`).textContent();

  step("the dashboard in Chinese");
  await admin.click("#lang");
  await admin.waitForFunction(() => document.documentElement.lang === "zh-CN", null, { timeout });
  await admin.waitForSelector(tile("first_time_fix", "value"), { timeout });
  out.zh = {
    heading: await text(admin, "h1"),
    ftfLabel: await text(admin, tile("first_time_fix", "label")),
    ftfValue: await text(admin, tile("first_time_fix", "value")),
    satisfactionSub: await text(admin, tile("satisfaction", "sub")),
    followUps: await text(admin, "#follow-ups-card h2"),
  };
  await shot(admin, "admin-zh");
  await admin.setViewportSize({ width: 390, height: 844 });
  await admin.waitForTimeout(400); // the chart redraws at the new width
  await shot(admin, "admin-zh-phone");
  await adminCtx.close();
  out.ok = true;
  console.log(JSON.stringify(out));
} catch (e) {
  out.error = String((e && e.message) || e);
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    try {
      out[`debug_${new URL(p.url()).pathname}`] = await p.evaluate(() => ({
        status: document.getElementById("status")?.textContent,
        body: document.body.innerText.slice(0, 1500),
      }));
    } catch {}
  }
  console.log(JSON.stringify(out));
  process.exitCode = 1;
} finally {
  await browser.close();
}
