// The customer and the expert in headless Chromium (Debian's), driven by playwright-core:
//   node journey.mjs <base url> <invite url> <expert user> <expert password> <y4m file> <work order id> <expected mean luma>
// Prints one JSON line with what it saw; exits non-zero on the first failed step.
import { chromium } from "playwright-core";

const [base, inviteUrl, user, password, y4m, workOrder, expectedLuma] = process.argv.slice(2);
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
try {
  step("customer opens the invite link");
  const customerCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "zh-CN" });
  const customer = await customerCtx.newPage();
  customer.on("console", (m) => m.type() === "error" && console.error("customer:", m.text()));
  await customer.goto(inviteUrl);
  await customer.waitForFunction(() => document.getElementById("wo-title").textContent.length > 0, null, { timeout });
  out.customerLanguage = await customer.evaluate(() => document.documentElement.lang);
  out.customerStartLabel = await customer.textContent("#start");
  await customer.click("#start");
  await customer.waitForFunction(() => /1/.test(document.getElementById("status").textContent), null, { timeout });
  out.queueStatus = await customer.textContent("#status");

  step("expert logs in and accepts");
  const expertCtx = await browser.newContext({ locale: "en-US" });
  const expert = await expertCtx.newPage();
  expert.on("console", (m) => m.type() === "error" && console.error("expert:", m.text()));
  await expert.goto(`${base}/console`);
  await expert.fill("#username", user);
  await expert.fill("#password", password);
  await expert.click("#login-form button");
  const accept = `button[data-work-order="${workOrder}"]`;
  await expert.waitForSelector(accept, { timeout });
  await expert.click(accept);

  step("the expert sees the customer's camera");
  await expert.waitForFunction(() => {
    const v = document.getElementById("remote");
    return v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 5;
  }, null, { timeout });
  const pixels = await expert.evaluate(() => {
    const v = document.getElementById("remote");
    const c = document.createElement("canvas");
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    return { w: c.width, h: c.height, meanLuma: sum / (d.length / 4), frames: v.getVideoPlaybackQuality().totalVideoFrames };
  });
  Object.assign(out, pixels);
  if (Math.abs(pixels.meanLuma - Number(expectedLuma)) > 20) throw new Error(`mean luma ${pixels.meanLuma} vs source ${expectedLuma}`);

  step("the customer hears the expert");
  await customer.waitForFunction(() => {
    const a = document.getElementById("remote-audio");
    return a.srcObject && a.srcObject.getAudioTracks().length > 0;
  }, null, { timeout });
  out.customerHearsExpert = true;

  step("chat both ways");
  await expert.fill("#chat-input", "please show the battery contacts");
  await expert.click("#chat-form button");
  await customer.waitForFunction(() => document.getElementById("chat-log").textContent.includes("please show the battery contacts"), null, { timeout });
  await customer.fill("#chat-input", "好的，马上");
  await customer.click("#chat-form button");
  await expert.waitForFunction(() => document.getElementById("chat-log").textContent.includes("好的，马上"), null, { timeout });
  out.chat = true;

  step("live diagnosis reaches the console");
  await expert.waitForSelector("#diagnosis [data-label]", { timeout });
  out.diagnosis = await expert.getAttribute("#diagnosis [data-label]", "data-label");

  step("the expert ends the call as resolved");
  await expert.click("#end-resolved");
  await customer.waitForFunction(() => /resolved_remote/.test(document.getElementById("status").textContent), null, { timeout });
  out.endedStatus = await customer.textContent("#status");
  out.ok = true;
  console.log(JSON.stringify(out));
} catch (e) {
  out.error = String(e && e.message || e);
  for (const p of browser.contexts().flatMap((c) => c.pages())) {
    try {
      out[`debug_${p.url().includes("console") ? "expert" : "customer"}`] = await p.evaluate(() => ({
        dbg: window.fixlineDebug,
        video: (() => { const v = document.getElementById("remote") || document.getElementById("preview"); return v && { w: v.videoWidth, rs: v.readyState, src: !!v.srcObject }; })(),
        status: document.getElementById("status")?.textContent,
      }));
    } catch {}
  }
  console.log(JSON.stringify(out));
  process.exitCode = 1;
} finally {
  await browser.close();
}
