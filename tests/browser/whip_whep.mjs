// Independent WHIP and WHEP clients in headless Chromium: medooze's `whip-whep` (npm,
// by an author of the WHIP RFC), not our code. One page publishes the fake camera into
// the session over WHIP; a second, in another browser context, plays the session over
// WHEP and checks the picture against the source.
//   node whip_whep.mjs <base url> <whip url> <whip token> <whep url> <whep token> <y4m file> <expected mean luma> <release file>
// It keeps publishing until the test creates <release file> (at most 60 s), then ends both.
// Prints one JSON line with what it saw; exits non-zero on the first failed step.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { chromium } from "playwright-core";

const [base, whipUrl, whipToken, whepUrl, whepToken, y4m, expectedLuma, releaseFile] = process.argv.slice(2);
const out = {};
const step = (name) => (out.step = name);
const require = createRequire(import.meta.url);
const pkg = dirname(require.resolve("whip-whep/package.json"));
const modules = { "/__peer__/whip.js": readFileSync(join(pkg, "whip.js")), "/__peer__/whep.js": readFileSync(join(pkg, "whep.js")) };

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
// A page of the server's origin (so the clients' fetches are same-origin) with the
// client modules served beside it by the test, not by the server.
async function page() {
  const ctx = await browser.newContext();
  await ctx.route(`${base}/__peer__/*`, (route) => {
    const body = modules[new URL(route.request().url()).pathname];
    return body ? route.fulfill({ body, contentType: "text/javascript" }) : route.fulfill({ status: 404 });
  });
  await ctx.route(`${base}/__blank__`, (route) => route.fulfill({ body: "<!doctype html><title>peer</title>", contentType: "text/html" }));
  const p = await ctx.newPage();
  p.on("console", (m) => m.type() === "error" && console.error("page:", m.text()));
  await p.goto(`${base}/__blank__`);
  return p;
}
const timeout = 20_000;
try {
  step("WHIP: medooze's client publishes the camera");
  const publisher = await page();
  out.whip = await publisher.evaluate(async ([url, token]) => {
    const { WHIPClient } = await import("/__peer__/whip.js");
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: true });
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    const whip = new WHIPClient();
    await whip.publish(pc, url, token);
    window.whip = whip;
    window.pc = pc;
    return { resource: whip.resourceURL.pathname };
  }, [whipUrl, whipToken]);
  await publisher.waitForFunction(() => window.pc.connectionState === "connected", null, { timeout });

  step("WHEP: medooze's client plays the session");
  const viewer = await page();
  out.whep = await viewer.evaluate(async ([url, token]) => {
    const { WHEPClient } = await import("/__peer__/whep.js");
    const pc = new RTCPeerConnection();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    const stream = new MediaStream();
    pc.ontrack = (e) => {
      stream.addTrack(e.track);
      video.srcObject = stream;
    };
    const whep = new WHEPClient();
    await whep.view(pc, url, token);
    window.whep = whep;
    window.pc = pc;
    window.video = video;
    return { resource: whep.resourceURL.pathname };
  }, [whepUrl, whepToken]);
  await viewer.waitForFunction(() => window.video.videoWidth > 0 && window.video.getVideoPlaybackQuality().totalVideoFrames > 5, null, { timeout });
  const pixels = await viewer.evaluate(() => {
    const v = window.video;
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

  step("keep publishing while the test checks the expert's side");
  for (let waited = 0; !existsSync(releaseFile); waited += 100) {
    if (waited > 60_000) throw new Error("the test never released the publisher");
    await publisher.waitForTimeout(100);
  }

  step("both clients end their resources (DELETE)");
  await viewer.evaluate(() => window.whep.stop());
  await publisher.evaluate(() => window.whip.stop());
  out.ok = true;
  console.log(JSON.stringify(out));
} catch (e) {
  out.error = String((e && e.message) || e);
  console.log(JSON.stringify(out));
  process.exitCode = 1;
} finally {
  await browser.close();
}
