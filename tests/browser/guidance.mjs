// Guidance in a live call, in headless Chromium (Debian's), driven by playwright-core:
//   node guidance.mjs <base url> <invite url> <expert user> <expert password> <y4m file> <work order id> <arrows>
// The expert draws arrows on the customer's video; the customer's overlay must show
// each at the right place (pixels of the overlay canvas at the expected coordinates),
// and the delivery latency (expert's send to the customer's paint) is measured. Then a
// procedure's step cards are pushed and answered. Prints one JSON line.
import { chromium } from "playwright-core";

const [base, inviteUrl, user, password, y4m, workOrder, arrowsArg] = process.argv.slice(2);
const arrows = Number(arrowsArg || 30);
const out = {};
const step = (name) => (out.step = name);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${y4m}`,
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ],
});
const timeout = 20_000;

/// The overlay canvas pixel (RGBA) at a normalized video position, on the given page.
async function overlayPixel(page, videoId, canvasId, nx, ny) {
  return page.evaluate(([videoId, canvasId, nx, ny]) => {
    const v = document.getElementById(videoId);
    const c = document.getElementById(canvasId);
    const cw = c.clientWidth, ch = c.clientHeight;
    const s = Math.min(cw / v.videoWidth, ch / v.videoHeight);
    const w = v.videoWidth * s, h = v.videoHeight * s;
    const x = (cw - w) / 2 + nx * w, y = (ch - h) / 2 + ny * h;
    const dpr = c.width / cw;
    const d = c.getContext("2d").getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data;
    return Array.from(d);
  }, [videoId, canvasId, nx, ny]);
}

/// Page coordinates of a normalized video position on the expert's overlay.
async function expertPoint(page, nx, ny) {
  return page.evaluate(([nx, ny]) => {
    const v = document.getElementById("remote");
    const c = document.getElementById("remote-overlay");
    const r = c.getBoundingClientRect();
    const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    const w = v.videoWidth * s, h = v.videoHeight * s;
    return { x: r.left + (r.width - w) / 2 + nx * w, y: r.top + (r.height - h) / 2 + ny * h };
  }, [nx, ny]);
}

const isRed = ([r, g, b, a]) => a > 200 && r > 200 && g < 120 && b < 120;

try {
  step("customer joins and the expert accepts");
  const customerCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US" });
  const customer = await customerCtx.newPage();
  customer.on("console", (m) => m.type() === "error" && console.error("customer:", m.text()));
  await customer.goto(inviteUrl);
  await customer.waitForFunction(() => document.getElementById("wo-title").textContent.length > 0, null, { timeout });
  await customer.click("#start");
  const expertCtx = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const expert = await expertCtx.newPage();
  expert.on("console", (m) => m.type() === "error" && console.error("expert:", m.text()));
  await expert.goto(`${base}/console`);
  await expert.fill("#username", user);
  await expert.fill("#password", password);
  await expert.click("#login-form button");
  await expert.waitForSelector(`button[data-work-order="${workOrder}"]`, { timeout });
  await expert.click(`button[data-work-order="${workOrder}"]`);
  await expert.waitForFunction(() => {
    const v = document.getElementById("remote");
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
  }, null, { timeout });
  await customer.waitForFunction(() => document.getElementById("preview").videoWidth > 0, null, { timeout });
  // Let the data channel open (annotations prefer it over the socket).
  await expert.waitForTimeout(500);

  step("the expert draws an arrow; the customer's overlay shows it in place");
  await expert.click('#tools [data-tool="arrow"]');
  const from = await expertPoint(expert, 0.2, 0.3);
  const to = await expertPoint(expert, 0.6, 0.6);
  await expert.mouse.move(from.x, from.y);
  await expert.mouse.down();
  await expert.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 4 });
  await expert.mouse.move(to.x, to.y, { steps: 4 });
  await expert.mouse.up();
  await customer.waitForFunction(() => (window.fixlineDebug?.annotations || []).length >= 1, null, { timeout });
  // On the arrow's shaft (a third of the way) and off it.
  out.onShaft = await overlayPixel(customer, "preview", "preview-overlay", 0.2 + 0.4 / 3, 0.3 + 0.3 / 3);
  out.offShaft = await overlayPixel(customer, "preview", "preview-overlay", 0.8, 0.2);
  if (!isRed(out.onShaft)) throw new Error(`no arrow at the expected place: ${out.onShaft}`);
  if (out.offShaft[3] !== 0) throw new Error(`paint where there is no arrow: ${out.offShaft}`);
  out.arrowPlaced = true;

  step(`latency of ${arrows} more arrows`);
  for (let i = 0; i < arrows; i++) {
    const a = await expertPoint(expert, 0.1 + (i % 10) * 0.05, 0.7);
    const b = await expertPoint(expert, 0.15 + (i % 10) * 0.05, 0.85);
    await expert.mouse.move(a.x, a.y);
    await expert.mouse.down();
    await expert.mouse.move(b.x, b.y, { steps: 2 });
    await expert.mouse.up();
    await expert.waitForTimeout(60);
  }
  await customer.waitForFunction((n) => window.fixlineDebug.annotations.length >= n, arrows + 1, { timeout });
  const lat = (await customer.evaluate(() => window.fixlineDebug.annotations.map((a) => a.latencyMs))).sort((x, y) => x - y);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.round((lat.length - 1) * p))];
  out.latency = { n: lat.length, p50: pct(0.5), p99: pct(0.99), max: lat[lat.length - 1] };

  step("undo and clear reach the customer");
  await expert.click("#clear");
  await customer.waitForFunction(() => {
    const c = document.getElementById("preview-overlay");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false;
    return true;
  }, null, { timeout });
  out.cleared = true;

  step("the expert pushes a procedure and the customer answers its cards");
  await expert.fill("#procedure-q", "carbon brushes drill sparks");
  await expert.click("#procedure-search button");
  const push = 'button[data-procedure="proc.drill_carbon_brush_replace"]';
  await expert.waitForSelector(push, { timeout });
  await expert.click(push);
  await customer.waitForFunction(() => document.getElementById("step-card").dataset.index === "1" && !document.getElementById("step-card").hidden, null, { timeout });
  out.card1 = await customer.textContent("#card-title");
  out.card1Safety = await customer.isVisible("#card-safety");
  await customer.click("#answer-done");
  await customer.waitForFunction(() => document.getElementById("step-card").dataset.index === "2", null, { timeout });
  await customer.click("#answer-failed");
  await expert.waitForFunction(() => document.querySelectorAll("#step-answers li").length >= 2, null, { timeout });
  out.expertSawAnswers = await expert.evaluate(() => [...document.querySelectorAll("#step-answers li")].map((li) => li.dataset.answer));

  step("the expert saves an annotated snapshot");
  await expert.click("#freeze");
  const c1 = await expertPoint(expert, 0.5, 0.5);
  const c2 = await expertPoint(expert, 0.6, 0.5);
  await expert.click('#tools [data-tool="circle"]');
  await expert.mouse.move(c1.x, c1.y);
  await expert.mouse.down();
  await expert.mouse.move(c2.x, c2.y, { steps: 3 });
  await expert.mouse.up();
  await expert.click("#save-snapshot");
  await expert.waitForFunction(() => /saved|保存/.test(document.getElementById("status").textContent), null, { timeout });

  step("a server snapshot is diagnosed and explained next to the diagnosis");
  await expert.click("#freeze");
  await expert.click("#snapshot");
  await expert.waitForSelector('#evidence-caption[data-kind="image"]', { timeout });
  out.explanation = await expert.textContent("#evidence-caption");
  out.explanationRegion = await expert.getAttribute("#evidence-caption", "data-region");
  out.ok = true;
  console.log(JSON.stringify(out));
} catch (e) {
  out.error = String((e && e.message) || e);
  console.log(JSON.stringify(out));
  process.exitCode = 1;
} finally {
  await browser.close();
}
