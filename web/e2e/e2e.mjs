#!/usr/bin/env node
// End-to-end test of the web UI in a real browser, against a running `dself serve` on a prepared
// avatar: Debian's Chromium (headless) driven by playwright-core; no browser is downloaded.
//
//   node web/e2e/e2e.mjs --url http://127.0.0.1:8080 --out build/e2e-artifacts [--chromium PATH]
//
// At laptop (1280×800) and phone (390×844) widths: Talk shows the synthetic label, connects,
// sends a message, shows the reply text and its sources, receives audio bytes and frames, and
// the canvas changes frame to frame; Studio shows the pipeline's stages and the models' metrics as
// /api/metrics has them (or how to measure them), the Train panel (not ready on the fixture, and
// why; the held-out sentences with the person's real recordings), and (at laptop width) runs a report job to done
// with its log and makes a downloadable MP4 with say;
// with --voice-wav, a hold-to-talk voice message (Chromium's fake microphone plays the file) is
// heard and answered.
// With --dself, --sample and --web-root, first the journey of a new user on an empty avatar (a
// server of its own, started and restarted here): Talk and the Studio say what to do first; the
// sample's videos are uploaded with their captions as one job; prepare runs with progress that
// moves; the report opens with every picture loaded and fits a phone; a video is made; after a
// reload the video and the conversation are found again; a source plays the person's own video
// at its moment; the server restarts mid-session and the page recovers; no request answers 404.
// Screenshots (journey-*.png) and the browser's console go to --out. Exit 0 when every check passed.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

function parseArgs(argv) {
  const args = {
    url: "",
    out: "e2e-artifacts",
    chromium: process.env.CHROMIUM || "/usr/bin/chromium",
    token: "",
    "voice-wav": "",
    dself: "",
    sample: "",
    "web-root": "",
    only: "",
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in args) || i + 1 >= argv.length) {
      console.error(`usage: e2e.mjs --url URL --out DIR [--chromium PATH] [--token T] [--voice-wav WAV] [--dself BIN --sample DIR --web-root DIR] (bad argument: ${argv[i]})`);
      process.exit(1);
    }
    args[key] = argv[++i];
  }
  if (!args.url) {
    console.error("usage: e2e.mjs --url URL --out DIR [--chromium PATH] [--token T] [--voice-wav WAV]");
    process.exit(1);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const outDir = resolve(args.out);
mkdirSync(outDir, { recursive: true });
const base = args.url.replace(/\/+$/, "");
const query = args.token ? `?token=${encodeURIComponent(args.token)}` : "";

const QUESTION = "Where are you filming from today?";
const SAY_TEXT = "Hello from a new avatar. This is a short test.";
// Answered from the end of the sample's first video (at 0:06), so that playing its source is a seek.
const LATE_QUESTION = "Where will the rails take you next time?";
const VIEWPORTS = [
  { name: "laptop", viewport: { width: 1280, height: 800 }, isMobile: false, hasTouch: false },
  { name: "phone", viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
];

const results = [];
const consoleLines = [];
let failed = 0;

function check(name, ok, detail = "") {
  results.push({ name, ok: !!ok, detail });
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? `: ${detail}` : ""}`);
}

/** Runs `body`; a thrown error or a timeout becomes a failed check instead of ending the run. */
async function step(name, body) {
  try {
    await body();
  } catch (e) {
    check(name, false, String(e && e.message ? e.message.split("\n")[0] : e));
  }
}

/** A cheap hash of the canvas's pixels, to tell whether the picture changed. */
function canvasHash(page) {
  return page.evaluate(() => {
    const c = document.querySelector("[data-testid=avatar-canvas]");
    if (!c) return "none";
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    for (let i = 0; i < d.length; i += 7) h = Math.imul(h ^ d[i], 16777619);
    return `${c.width}x${c.height}:${(h >>> 0).toString(16)}`;
  });
}

const stats = (page) => page.evaluate(() => ({ ...(window.__dself || {}) }));

async function talk(page, vp) {
  const tag = `talk/${vp.name}`;
  await page.goto(`${base}/${query}#/talk`, { waitUntil: "load" });

  await step(`${tag}: synthetic label`, async () => {
    const label = page.getByTestId("synthetic-label");
    await label.waitFor({ state: "visible", timeout: 10000 });
    const text = await label.innerText();
    check(`${tag}: synthetic label visible`, /synthetic/i.test(text) && /not a real person/i.test(text), text.replace(/\s+/g, " "));
  });

  await step(`${tag}: live connection`, async () => {
    await page.waitForFunction(() => window.__dself && window.__dself.hello === true, null, { timeout: 20000 });
    check(`${tag}: live connection and hello`, true);
  });

  const before = await stats(page);
  const hashBefore = await canvasHash(page);
  await step(`${tag}: send a message`, async () => {
    await page.getByTestId("message-input").fill(QUESTION);
    await page.getByTestId("send").click();
    check(`${tag}: message sent`, true, QUESTION);
  });

  await step(`${tag}: reply text`, async () => {
    const reply = page.getByTestId("reply").last();
    await page.waitForFunction(
      () => {
        const r = [...document.querySelectorAll("[data-testid=reply] .bubble")].pop();
        return !!r && r.textContent.trim().length > 3;
      },
      null,
      { timeout: 60000 },
    );
    const text = (await reply.locator(".bubble").innerText()).trim();
    check(`${tag}: reply text shown`, text.length > 3, JSON.stringify(text.slice(0, 120)));
  });

  await step(`${tag}: sources`, async () => {
    await page.getByTestId("reply").last().getByTestId("sources").waitFor({ state: "visible", timeout: 30000 });
    const items = await page.getByTestId("reply").last().locator(".source-label").allInnerTexts();
    check(`${tag}: sources under the reply`, items.length > 0 && items.every((s) => /@ \d+:\d\d$/.test(s)), items.join(" | "));
  });

  await step(`${tag}: audio`, async () => {
    await page.waitForFunction((b) => window.__dself.audioBytes > b + 3200, before.audioBytes || 0, { timeout: 60000 });
    const s = await stats(page);
    check(`${tag}: audio data arriving`, true, `${s.audioBytes - (before.audioBytes || 0)} bytes in ${s.audioChunks - (before.audioChunks || 0)} chunks, clock ${s.clock}`);
  });

  // Sample the canvas while the reply plays: the picture must change from frame to frame.
  await step(`${tag}: frames`, async () => {
    await page.waitForFunction((b) => window.__dself.framesDrawn > b, before.framesDrawn || 0, { timeout: 60000 });
    const hashes = new Set([hashBefore]);
    let shot = false;
    for (let i = 0; i < 30; i++) {
      hashes.add(await canvasHash(page));
      if (i === 8 && !shot) {
        await page.screenshot({ path: join(outDir, `talk-${vp.name}.png`) });
        shot = true;
      }
      await page.waitForTimeout(80);
    }
    const s = await stats(page);
    const drawn = s.framesDrawn - (before.framesDrawn || 0);
    check(`${tag}: frames drawn`, drawn >= 5, `${drawn} drawn of ${s.framesReceived - (before.framesReceived || 0)} received`);
    check(`${tag}: canvas changes frame to frame`, hashes.size >= 4, `${hashes.size} distinct pictures in 30 samples`);
    // Lips in sync: frames are drawn at their time on the audio clock, never ahead of the audio.
    const lag = (s.frameLagTotalMs - (before.frameLagTotalMs || 0)) / Math.max(drawn, 1);
    check(`${tag}: frames follow the audio clock`, s.clock === "audio" && lag < 120, `clock ${s.clock}, mean lag ${lag.toFixed(1)} ms`);
  });

  await step(`${tag}: voice named`, async () => {
    const voice = await page.getByTestId("talk-voice").innerText();
    check(`${tag}: the voice's name under the avatar`, /voice: .+/.test(voice), voice);
  });

  await step(`${tag}: reply done`, async () => {
    await page.getByTestId("send").waitFor({ state: "visible", timeout: 90000 });
    const s = await stats(page);
    check(`${tag}: reply finished`, s.replies > (before.replies || 0), s.lastError ? `last error: ${s.lastError}` : "");
  });
  if (vp.name === "laptop" && args["voice-wav"]) await holdToTalk(page, tag);
  await page.screenshot({ path: join(outDir, `talk-${vp.name}-done.png`) });
}

/** Hold-to-talk: Chromium's fake microphone plays --voice-wav (the person's own speech); the
 * recording goes to the server as a voice message, comes back as a transcript and a reply. */
async function holdToTalk(page, tag) {
  await step(`${tag}: hold to talk`, async () => {
    const replies = await page.getByTestId("reply").count();
    const mic = page.getByRole("button", { name: /Hold to talk/ });
    const box = await mic.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.waitForTimeout(5000);
    await page.mouse.up();
    await page.waitForFunction(
      (n) => {
        const r = document.querySelectorAll("[data-testid=reply]");
        return r.length > n && r[r.length - 1].querySelector(".bubble").textContent.trim().length > 3;
      },
      replies,
      { timeout: 90000 },
    );
    const heard = (await page.getByTestId("message").last().innerText()).trim();
    const reply = (await page.getByTestId("reply").last().locator(".bubble").innerText()).trim();
    check(`${tag}: voice message heard and answered`, heard.length > 3 && !/nothing was heard|listening/.test(heard), `heard ${JSON.stringify(heard)} → ${JSON.stringify(reply.slice(0, 60))}`);
    await page.getByTestId("send").waitFor({ state: "visible", timeout: 90000 });
  });
}

/** Text the Models panel must show for a kind's metrics.json: each known part's headline figure,
 * formatted as Studio formats it, or its error. */
function expectedFigures(kind, m) {
  const part = (v, figure) => (v && typeof v.error === "string" ? [v.error] : v && figure(v) !== null ? [figure(v)] : []);
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  if (m && typeof m.error === "string") return [m.error];
  if (kind === "voice") return part(m, (v) => (num(v.wer) === null ? null : `${(v.wer * 100).toFixed(0)}%`));
  if (kind === "motion") return part(m, (v) => (num(v.tracked?.lmd_iod_pct) === null ? null : `${v.tracked.lmd_iod_pct.toFixed(2)}%`));
  if (kind === "render")
    return [
      ...part(m?.lip_sync, (v) => (num(v.mouth_error_iod_pct) === null ? null : `${v.mouth_error_iod_pct.toFixed(2)}%`)),
      ...part(m?.reenactment, (v) => (num(v.face?.psnr_db) === null ? null : `${v.face.psnr_db.toFixed(1)} dB`)),
    ];
  return [];
}

/** The Train panel: on the small fixture training is not ready (the button disabled, the panel
 * saying what it waits for); the held-out sentences are listed as /api/voice/samples has them and
 * the person's real recording loads as a WAV. */
async function trainPanel(page, vp) {
  const tag = `train/${vp.name}`;
  const panel = page.getByTestId("train");
  await step(`${tag}: not ready, and why`, async () => {
    await panel.waitFor({ state: "visible", timeout: 15000 });
    const readiness = page.getByTestId("train-readiness");
    await readiness.waitFor({ state: "visible", timeout: 15000 });
    const text = (await readiness.innerText()).replace(/\s+/g, " ");
    const button = page.getByTestId("train-start");
    check(`${tag}: says what training waits for`, /needs 2 minutes of the person's speech; has \d+\.\d — add videos and prepare/.test(text), text);
    check(`${tag}: train button disabled`, await button.isDisabled(), await button.innerText());
    const name = await page.getByTestId("voice-name").innerText();
    check(`${tag}: the voice's name shown`, /fallback voice/i.test(name), name);
    const figures = (await page.getByTestId("train-figures").innerText()).replace(/\s+/g, " ");
    check(`${tag}: figures say when they come, without terminal commands`, /evaluated/.test(figures) && !/dself /.test(figures), figures.slice(0, 160));
  });
  await step(`${tag}: loss curves`, async () => {
    const res = await page.request.get(`${base}/api/models/voice/curve${query}`);
    const points = res.ok() ? (await res.json()).points ?? [] : [];
    if (points.length === 0) {
      const empty = await page.getByTestId("train-curve-empty").innerText();
      check(`${tag}: no curve before training, and said so`, res.status() === 404 && /No training curve yet/.test(empty), empty);
      return;
    }
    const chart = page.getByTestId("train").getByTestId("line-chart");
    await chart.waitFor({ state: "visible", timeout: 15000 });
    const lines = await chart.locator("polyline").evaluateAll((els) => els.map((e) => e.getAttribute("points").trim().split(/\s+/).length));
    const legend = (await chart.locator(".legend").innerText()).replace(/\s+/g, " ");
    const held = points.filter((p) => typeof p.held_out_loss === "number").length;
    check(`${tag}: train and held-out loss curves drawn`, lines.length === 2 && lines[0] === points.length && lines[1] === held && /train/.test(legend) && /held-out/.test(legend), `${lines.join(" and ")} points of ${points.length}/${held}; ${legend}`);
  });
  await step(`${tag}: held-out sentences`, async () => {
    const res = await page.request.get(`${base}/api/voice/samples${query}`);
    const samples = res.ok() ? (await res.json()).samples : [];
    const list = page.getByTestId("voice-samples");
    await list.waitFor({ state: "visible", timeout: 15000 });
    const shown = await list.locator(".sample-text").allInnerTexts();
    const want = samples.map((s) => `“${s.text}”`);
    check(`${tag}: the held-out sentences listed`, samples.length > 0 && shown.join("|") === want.join("|"), `${shown.length} shown: ${shown.join(" | ").slice(0, 160)}`);
    // The first real recording: the <audio> element loads it (metadata read), and it is a WAV.
    const audio = list.getByTestId("real-audio").first();
    await audio.scrollIntoViewIfNeeded();
    const src = await audio.getAttribute("src");
    const loaded = await audio.evaluate(
      (a) => new Promise((done) => {
        if (a.readyState >= 1) return done({ state: a.readyState, duration: a.duration });
        a.addEventListener("loadedmetadata", () => done({ state: a.readyState, duration: a.duration }), { once: true });
        a.addEventListener("error", () => done({ state: -1, error: a.error && a.error.code }), { once: true });
        a.load();
      }),
    );
    const wav = await page.request.get(new URL(src, page.url()).href);
    const body = await wav.body();
    check(
      `${tag}: the real recording loads (audio/wav)`,
      wav.status() === 200 && wav.headers()["content-type"] === "audio/wav" && body.subarray(0, 4).toString() === "RIFF" && loaded.state >= 1 && loaded.duration > 0,
      `HTTP ${wav.status()} ${wav.headers()["content-type"]}, ${body.length} bytes, element ${JSON.stringify(loaded)}`,
    );
    check(`${tag}: no trained voice to play yet`, (await list.getByTestId("trained-audio").count()) === 0 && /not trained yet/.test(await list.innerText()));
  });
  // The whole panel from a page scrolled to the top, so that the sticky top bar does not cover it.
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = await panel.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height };
  });
  await page.screenshot({ path: join(outDir, `train-${vp.name}.png`), fullPage: true, clip: box });
}

async function studio(page, vp) {
  const tag = `studio/${vp.name}`;
  await page.goto(`${base}/${query}#/studio`, { waitUntil: "load" });
  await step(`${tag}: stages`, async () => {
    await page.getByTestId("stages").waitFor({ state: "visible", timeout: 15000 });
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=stages] [data-stage]").length >= 4, null, { timeout: 15000 });
    const rows = await page.locator("[data-testid=stages] [data-stage]").evaluateAll((els) =>
      els.map((e) => `${e.getAttribute("data-stage")} ${e.querySelector(".count")?.textContent}`),
    );
    const prepared = rows.filter((r) => /^prepare\.(audio|transcript|speech|face) (\d+)\/\2$/.test(r) && !/ 0\/0$/.test(r));
    check(`${tag}: pipeline stages shown`, prepared.length === 4, rows.join(", "));
  });
  await step(`${tag}: metrics`, async () => {
    const metrics = page.getByTestId("metrics");
    await metrics.waitFor({ state: "visible", timeout: 15000 });
    await page.waitForFunction(() => !/loading/.test(document.querySelector("[data-testid=metrics]").textContent), null, { timeout: 15000 });
    const text = await metrics.innerText();
    const hasError = (await metrics.locator(".error").count()) > 0;
    check(`${tag}: metrics shown`, !hasError && /server:/.test(text), text.replace(/\s+/g, " ").slice(0, 160));
    // What the server has is what the panel shows: a section per model kind with its headline
    // figures (or the part's error), else the line saying how to measure them.
    const res = await page.request.get(`${base}/api/metrics${query}`);
    const models = res.ok() ? (await res.json()).models ?? {} : null;
    const kinds = Object.keys(models ?? {});
    const shown = await metrics.locator("[data-model]").evaluateAll((els) => els.map((e) => e.getAttribute("data-model")));
    const missing = [];
    for (const kind of kinds) {
      const section = (await metrics.locator(`[data-model="${kind}"]`).innerText().catch(() => "")).replace(/\s+/g, " ");
      for (const want of expectedFigures(kind, models[kind])) if (!section.includes(want)) missing.push(`${kind}: ${want}`);
    }
    const empty = kinds.length === 0 ? await metrics.getByTestId("no-metrics").innerText().catch(() => "") : "";
    check(
      `${tag}: metrics match /api/metrics`,
      models !== null && shown.slice().sort().join() === kinds.slice().sort().join() && missing.length === 0 && (kinds.length > 0 || (/evaluated/.test(empty) && !/dself /.test(empty))),
      kinds.length ? `kinds ${shown.join(", ")}${missing.length ? `; missing ${missing.join("; ")}` : ""}` : empty || `/api/metrics ${res.status()}`,
    );
  });
  await trainPanel(page, vp);
  await step(`${tag}: jobs and say`, async () => {
    check(`${tag}: jobs, add videos and say present`,
      (await page.getByTestId("jobs").isVisible()) && (await page.getByTestId("add-sources").isVisible()) && (await page.getByTestId("say").count()) === 1);
  });
  if (vp.name === "laptop") {
    // A job through the UI: started by POST /api/jobs, followed over SSE to done, its log shown.
    await step(`${tag}: report job`, async () => {
      await page.getByRole("button", { name: "Build report" }).click();
      await page.locator("[data-testid=jobs] .job .badge-done").first().waitFor({ state: "visible", timeout: 120000 });
      await page.locator("[data-testid=jobs] .job-head").first().click();
      await page.waitForFunction(() => /report/.test(document.querySelector("[data-testid=jobs] .log")?.textContent || ""), null, { timeout: 15000 });
      const link = page.getByRole("link", { name: /prepare report/ });
      await link.waitFor({ state: "visible", timeout: 15000 });
      const res = await page.request.get(new URL(await link.getAttribute("href"), page.url()).href);
      check(`${tag}: report job done, log and report shown`, res.ok() && /html/.test(res.headers()["content-type"] || ""), `report ${res.status()}`);
    });
    await step(`${tag}: say`, async () => {
      await page.locator("[data-testid=say] textarea").fill("Hello there. This is a short test.");
      await page.getByRole("button", { name: "Make the video" }).click();
      const download = page.getByRole("link", { name: "Download MP4" });
      await download.waitFor({ state: "visible", timeout: 300000 });
      const res = await page.request.get(new URL(await download.getAttribute("href"), page.url()).href);
      const body = await res.body();
      check(`${tag}: say makes a downloadable MP4`, res.ok() && res.headers()["content-type"] === "video/mp4" && body.subarray(4, 8).toString() === "ftyp", `${body.length} bytes`);
    });
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(outDir, `studio-${vp.name}.png`), fullPage: true });
}


// ---- the new user's journey, on an empty avatar ----

/** `dself serve` on `avatar` as a child process; resolves with its port once it listens. */
function startServer(avatar, port, logName) {
  return new Promise((resolvePort, reject) => {
    const child = spawn(args.dself, ["--avatar", avatar, "serve", "--port", String(port), "--web-root", args["web-root"]], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const log = [];
    const timer = setTimeout(() => reject(new Error(`dself serve did not listen: ${out}`)), 60000);
    const onData = (d) => {
      const text = d.toString();
      log.push(text);
      out += text;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m && timer) {
        clearTimeout(timer);
        resolvePort({ child, port: Number(m[1]), log });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", () => writeFileSync(join(outDir, logName), log.join("")));
    child.on("error", reject);
  });
}

function stopServer(server) {
  return new Promise((done) => {
    if (server.child.exitCode !== null) return done();
    server.child.once("exit", () => done());
    server.child.kill("SIGTERM");
  });
}

async function journey(browser) {
  const avatar = join(mkdtempSync(join(tmpdir(), "dself-journey-")), "avatar");
  let server = await startServer(avatar, 0, "journey-server.log");
  const url = `http://127.0.0.1:${server.port}`;
  const notFound = [];
  const watch = (page, name) => {
    page.on("response", (r) => {
      if (r.status() === 404) notFound.push(`[${name}] ${r.request().method()} ${r.url()}`);
    });
    page.on("console", (m) => consoleLines.push(`[journey-${name}] ${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => {
      consoleLines.push(`[journey-${name}] pageerror: ${e.message}`);
      check(`journey/${name}: no uncaught page errors`, false, e.message);
    });
  };
  const shot = (page, name) => page.screenshot({ path: join(outDir, `journey-${name}.png`), fullPage: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  watch(page, "laptop");
  const tag = "journey/laptop";
  try {
    // 1. Talk, before anything: it says the avatar is not ready and leads to the step.
    await page.goto(`${url}/#/talk`, { waitUntil: "load" });
    await step(`${tag}: talk before the avatar is ready`, async () => {
      await page.getByTestId("not-ready").waitFor({ state: "visible", timeout: 15000 });
      const badge = await page.getByTestId("talk-badge").innerText();
      const chips = await page.locator(".chip").evaluateAll((els) => els.map((e) => e.disabled));
      const text = await page.getByTestId("not-ready").innerText();
      // What the live connection says about the empty avatar arrives in its first second.
      await page.waitForFunction(() => window.__dself && window.__dself.connection === "open", null, { timeout: 20000 }).catch(() => undefined);
      await page.waitForTimeout(1500);
      const chat = await page.locator(".chat").innerText();
      check(`${tag}: Talk says the avatar is not ready, badge honest, chips disabled, no terminal commands`,
        /not ready/.test(badge) && chips.length > 0 && chips.every(Boolean) && /no videos/.test(text) && !/dself /.test(chat),
        `${badge.trim()} | ${chat.replace(/\s+/g, " ").slice(0, 300)}`);
      await shot(page, "01-talk-not-ready");
      await page.getByTestId("not-ready-link").click();
    });

    // 2. The Studio's steps: only adding videos can run.
    await step(`${tag}: studio steps on an empty avatar`, async () => {
      await page.getByTestId("guided-steps").waitFor({ state: "visible", timeout: 15000 });
      const states = await page.locator("[data-testid=guided-steps] [data-step]").evaluateAll((els) =>
        els.map((e) => `${e.getAttribute("data-step")}:${e.getAttribute("data-state")}`));
      const prepareDisabled = await page.getByRole("button", { name: "Run prepare" }).isDisabled();
      const ingestDot = await page.locator("[data-testid=stages] .stage-row").first().locator(".dot").getAttribute("class");
      check(`${tag}: steps enabled only when they can run`,
        states.join(",") === "videos:ready,prepare:waiting,train:waiting,talk:waiting" && prepareDisabled && !/done/.test(ingestDot),
        `${states.join(",")}; Run prepare ${prepareDisabled ? "disabled" : "ENABLED"}; ingest dot "${ingestDot}"`);
      await shot(page, "02-studio-empty");
    });

    // 3. Upload the sample's videos with their captions (and a stray captions file) at once.
    const sampleFiles = readdirSync(args.sample).filter((f) => /\.(mp4|vtt)$/.test(f)).map((f) => join(args.sample, f));
    const stray = join(mkdtempSync(join(tmpdir(), "dself-stray-")), "stray.en.vtt");
    writeFileSync(stray, "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nNo video of mine.\n");
    await step(`${tag}: upload videos with captions`, async () => {
      await page.getByTestId("upload-input").setInputFiles([...sampleFiles, stray]);
      await page.getByTestId("upload-summary").waitFor({ state: "visible", timeout: 60000 });
      const rows = await page.locator("[data-testid=uploads] li").allInnerTexts();
      const summary = await page.getByTestId("upload-summary").innerText();
      const videos = sampleFiles.filter((f) => f.endsWith(".mp4")).length;
      check(`${tag}: videos matched with their captions`,
        rows.filter((r) => /transcript from its captions/.test(r)).length === videos,
        rows.map((r) => r.replace(/\s+/g, " ")).join(" | "));
      check(`${tag}: captions without their video refused, naming the file`,
        rows.some((r) => /stray\.en\.vtt: no video named stray/.test(r)), "");
      check(`${tag}: several files are one job`, new RegExp(`${videos} videos added as one job`).test(summary), summary);
      await page.locator("[data-testid=jobs] .job.job-done").first().waitFor({ timeout: 120000 });
      const jobs = await (await page.request.get(`${url}/api/jobs`)).json();
      check(`${tag}: one ingest job for all the files`, jobs.jobs.filter((j) => j.kind === "ingest").length === 1 && jobs.jobs[0].sources.length === videos,
        JSON.stringify(jobs.jobs.map((j) => [j.id, j.kind, j.state, j.sources.length])));
      await shot(page, "03-uploaded");
    });

    // 4. The same video again: said where the user looks, nothing stored.
    await step(`${tag}: duplicate upload`, async () => {
      await page.getByTestId("upload-input").setInputFiles([sampleFiles.find((f) => f.endsWith(".mp4"))]);
      await page.getByTestId("upload-summary").getByText("Nothing new").waitFor({ timeout: 30000 });
      const row = await page.locator("[data-testid=uploads] li").first().innerText();
      check(`${tag}: duplicate said before storing`, /already in the avatar as source \d+/.test(row), row.replace(/\s+/g, " "));
    });

    // 4b. An upload cut off on the way: the row says so, and nothing was added.
    await step(`${tag}: interrupted upload`, async () => {
      const cut = join(mkdtempSync(join(tmpdir(), "dself-cut-")), "cut.mp4");
      writeFileSync(cut, Buffer.alloc(200000, 7));
      await page.route("**/api/uploads**", (route) => route.abort("connectionreset"));
      await page.getByTestId("upload-input").setInputFiles([cut]);
      await page.locator("[data-testid=uploads] li[data-state=failed]").first().waitFor({ timeout: 30000 });
      await page.unroute("**/api/uploads**");
      const row = await page.locator("[data-testid=uploads] li").first().innerText();
      const listed = await (await page.request.get(`${url}/api/status`)).json();
      check(`${tag}: an interrupted upload says so and adds nothing`,
        /cut\.mp4 was interrupted: nothing of it was added/.test(row) && listed.sources.length === 2,
        `${row.replace(/\s+/g, " ")}; ${listed.sources.length} sources`);
    });

    // 5. Prepare, with progress that moves and an estimate of time left.
    await step(`${tag}: prepare with moving progress`, async () => {
      await page.getByTestId("step-prepare").click();
      await page.waitForFunction(() => /prepare/.test(document.querySelector("[data-testid=jobs] .job:first-child .job-kind")?.textContent || ""), null, { timeout: 15000 });
      const shares = [];
      const stageCounts = new Set();
      let eta = false;
      let shotTaken = false;
      const deadline = Date.now() + 300000;
      while (Date.now() < deadline) {
        const now = await page.evaluate(() => {
          const bar = document.querySelector("[data-testid=job-progress] [role=progressbar]");
          const text = document.querySelector("[data-testid=job-progress] .count")?.textContent || "";
          const stages = [...document.querySelectorAll("[data-testid=stages] [data-stage]")].map((e) => e.querySelector(".count")?.textContent);
          const done = !!document.querySelector("[data-testid=jobs] .job:first-child .badge-done, [data-testid=jobs] .job:first-child .badge-failed");
          return { share: bar ? Number(bar.getAttribute("aria-valuenow")) : null, text, stages, done };
        });
        if (now.share !== null) shares.push(now.share);
        if (/left/.test(now.text)) eta = true;
        now.stages.forEach((c) => stageCounts.add(c));
        if (!shotTaken && now.share !== null && now.share > 0.3) {
          await shot(page, "04-preparing");
          shotTaken = true;
        }
        if (now.done) break;
        await page.waitForTimeout(250);
      }
      const distinct = [...new Set(shares)];
      const monotone = shares.every((v, i) => i === 0 || v >= shares[i - 1]);
      check(`${tag}: one job bar that only moves forward`, distinct.length >= 4 && monotone, `${distinct.length} values: ${distinct.map((v) => v.toFixed(2)).join(" ")}`);
      check(`${tag}: time left shown`, eta, "");
      check(`${tag}: stage bars advance during prepare`, stageCounts.has("1/2"), [...stageCounts].join(" "));
      const state = await page.locator("[data-testid=jobs] .job").first().getAttribute("class");
      check(`${tag}: prepare done`, /job-done/.test(state), state);
      await page.getByTestId("next-step").first().waitFor({ timeout: 15000 });
      const next = await page.getByTestId("next-step").first().innerText();
      check(`${tag}: next step suggested`, /report/.test(next) && /talk/.test(next), next);
      await shot(page, "05-prepared");
    });

    // 6. The report: every picture loads, a way back to the Studio.
    await step(`${tag}: report`, async () => {
      await page.getByTestId("next-report").click();
      await page.waitForLoadState("load");
      const images = await page.evaluate(async () => {
        const imgs = [...document.images];
        imgs.forEach((i) => (i.loading = "eager"));
        await Promise.all(imgs.map((i) => (i.complete ? null : new Promise((r) => { i.onload = r; i.onerror = r; }))));
        return imgs.map((i) => ({ src: i.src, ok: i.complete && i.naturalWidth > 0 }));
      });
      check(`${tag}: every report picture loads`, images.length >= 2 && images.every((i) => i.ok), `${images.filter((i) => i.ok).length}/${images.length} loaded`);
      await shot(page, "06-report");
      await page.getByTestId("report-back").click();
      await page.getByTestId("guided-steps").waitFor({ timeout: 15000 });
      check(`${tag}: the report leads back to the Studio`, /#\/studio/.test(page.url()), page.url());
    });

    // 7. A video with Say; found again after a reload, with its text.
    await step(`${tag}: say, then reload`, async () => {
      await page.locator("[data-testid=say] textarea").fill(SAY_TEXT);
      await page.getByRole("button", { name: "Make the video" }).click();
      await page.getByRole("link", { name: "Download MP4" }).waitFor({ state: "visible", timeout: 300000 });
      await page.reload({ waitUntil: "load" });
      await page.getByTestId("renders").waitFor({ timeout: 15000 });
      const texts = await page.getByTestId("render").allInnerTexts();
      check(`${tag}: the video is listed after a reload, with its text`, texts.some((t) => t.includes(SAY_TEXT)), texts.join(" | ").slice(0, 200));
      await shot(page, "07-renders");
    });

    // 8. Talk; reload; the conversation is there; a source plays the person's own video.
    await step(`${tag}: talk, reload, sources`, async () => {
      await page.goto(`${url}/#/talk`, { waitUntil: "load" });
      await page.waitForFunction(() => window.__dself && window.__dself.hello === true, null, { timeout: 30000 });
      await page.getByTestId("message-input").fill(LATE_QUESTION);
      await page.getByTestId("send").click();
      await page.getByTestId("reply").last().getByTestId("sources").waitFor({ timeout: 60000 });
      const reply = (await page.getByTestId("reply").last().locator(".bubble").innerText()).trim();
      await page.getByTestId("send").waitFor({ state: "visible", timeout: 90000 });
      await page.reload({ waitUntil: "load" });
      await page.getByTestId("earlier-reply").first().waitFor({ timeout: 15000 });
      const earlier = await page.getByTestId("earlier-reply").allInnerTexts();
      check(`${tag}: the conversation is back after a reload`, earlier.some((t) => t.includes(reply.slice(0, 40))), earlier.join(" | ").slice(0, 160));
      // The latest moment among the sources, so that the seek is not to the video's start.
      const labels = await page.getByTestId("source-link").allInnerTexts();
      const seconds = labels.map((l) => {
        const m = /@ (\d+):(\d\d)/.exec(l);
        return m ? Number(m[1]) * 60 + Number(m[2]) : -1;
      });
      await page.getByTestId("source-link").nth(seconds.indexOf(Math.max(...seconds))).click();
      const video = page.getByTestId("source-video");
      await video.waitFor({ timeout: 15000 });
      const seek = await video.evaluate(
        (v) => new Promise((done) => {
          const start = Number(v.dataset.start);
          const report = () => done({ start, at: v.currentTime, ready: v.readyState, error: v.error && v.error.code });
          const check = () => (v.readyState >= 1 && Math.abs(v.currentTime - start) < 1.5 ? report() : null);
          v.addEventListener("seeked", check);
          v.addEventListener("timeupdate", check);
          v.addEventListener("error", report);
          setTimeout(report, 15000);
          check();
        }),
      );
      check(`${tag}: a source plays the person's video at its moment`, seek.start > 2 && seek.ready >= 1 && !seek.error && Math.abs(seek.at - seek.start) < 1.5, JSON.stringify(seek));
      await shot(page, "08-source");

      // A message after the reload goes on with the same conversation: no new one in the catalog.
      const conversations = async () => (await (await page.request.get(`${url}/api/conversations`)).json()).conversations;
      const before = await conversations();
      const resumed = before.reduce((a, b) => (b.id > a.id ? b : a));
      await page.getByTestId("message-input").fill("Why?");
      await page.getByTestId("send").click();
      let after = before;
      for (let i = 0; i < 120; i++) {
        after = await conversations();
        const same = after.find((c) => c.id === resumed.id);
        if (after.length !== before.length || (same && same.message_count >= resumed.message_count + 2)) break;
        await page.waitForTimeout(500);
      }
      const same = after.find((c) => c.id === resumed.id);
      check(`${tag}: a message after a reload goes on with the same conversation`,
        after.length === before.length && !!same && same.message_count === resumed.message_count + 2,
        JSON.stringify({ before: before.length, after: after.length, resumed, now: same }));
      await page.getByTestId("send").waitFor({ state: "visible", timeout: 90000 });
    });

    // 9. The server restarts mid-session: the one notice shows, then clears; ids stay.
    await step(`${tag}: server restart`, async () => {
      const before = (await (await page.request.get(`${url}/api/jobs`)).json()).jobs.map((j) => `${j.id}:${j.kind}`);
      await stopServer(server);
      await page.getByTestId("offline-banner").waitFor({ state: "visible", timeout: 30000 });
      await shot(page, "09-server-away");
      server = await startServer(avatar, new URL(url).port, "journey-server-2.log");
      await page.getByTestId("offline-banner").waitFor({ state: "detached", timeout: 30000 });
      await page.waitForFunction(() => /live/.test(document.querySelector("[data-testid=talk-badge]")?.textContent || ""), null, { timeout: 30000 });
      check(`${tag}: the page recovers when the server is back`, true);
      const after = (await (await page.request.get(`${url}/api/jobs`)).json()).jobs.map((j) => `${j.id}:${j.kind}`);
      check(`${tag}: the job history keeps its ids after a restart`, before.length > 0 && before.every((j) => after.includes(j)), `${before.join(",")} -> ${after.join(",")}`);
      await page.goto(`${url}/#/studio`, { waitUntil: "load" });
      await page.locator("[data-testid=jobs] .job").first().waitFor({ timeout: 15000 });
      await shot(page, "10-after-restart");
    });

    // 10. A phone: the Studio and the report fit 390 px.
    await step(`journey/phone: studio and report fit`, async () => {
      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
      const p = await phone.newPage();
      watch(p, "phone");
      await p.goto(`${url}/#/studio`, { waitUntil: "load" });
      await p.getByTestId("guided-steps").waitFor({ timeout: 15000 });
      await p.waitForTimeout(500);
      const studioWidth = await p.evaluate(() => document.documentElement.scrollWidth);
      // The Sources table keeps its last column (the transcript's source) on screen.
      const lastColumn = await p.locator("[data-testid=transcript-source]").first().evaluate((el) => el.getBoundingClientRect().right);
      check(`journey/phone: the Sources table's last column is on screen`, lastColumn <= 390, `right edge at ${lastColumn} px`);
      await p.screenshot({ path: join(outDir, "journey-11-phone-studio.png"), fullPage: true });
      // The laptop's conversation, as if this were the same visitor's browser (each browser keeps
      // its own conversation's id).
      const all = (await (await p.request.get(`${url}/api/conversations`)).json()).conversations;
      const newest = all.reduce((a, b) => (b.id > a.id ? b : a));
      await p.evaluate((id) => window.localStorage.setItem("dself.conversation", id), String(newest.id));
      await p.goto(`${url}/#/talk`, { waitUntil: "load" });
      await p.getByTestId("earlier-reply").first().waitFor({ timeout: 15000 });
      const talkWidth = await p.evaluate(() => document.documentElement.scrollWidth);
      check(`journey/phone: Talk shows the earlier conversation within the screen`, talkWidth <= 392, `${talkWidth} px`);
      await p.screenshot({ path: join(outDir, "journey-13-phone-talk.png"), fullPage: true });
      await p.goto(`${url}/api/report`, { waitUntil: "load" });
      const reportWidth = await p.evaluate(() => document.documentElement.scrollWidth);
      await p.screenshot({ path: join(outDir, "journey-12-phone-report.png"), fullPage: true });
      const back = await p.getByTestId("report-back").isVisible();
      check(`journey/phone: the Studio and the report fit a 390 px screen, with a way back`, studioWidth <= 392 && reportWidth <= 392 && back,
        `studio ${studioWidth} px, report ${reportWidth} px`);
      await phone.close();
    });
    check(`journey: no request answered 404`, notFound.length === 0, notFound.slice(0, 5).join("; "));
  } finally {
    await context.close();
    await stopServer(server);
  }
}

const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    ...(args["voice-wav"] ? [`--use-file-for-fake-audio-capture=${resolve(args["voice-wav"])}`] : []),
  ],
});
try {
  if (args.dself && args.sample && args["web-root"]) await journey(browser);
  for (const vp of args.only === "journey" ? [] : VIEWPORTS) {
    const context = await browser.newContext({ viewport: vp.viewport, isMobile: vp.isMobile, hasTouch: vp.hasTouch, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.on("console", (m) => consoleLines.push(`[${vp.name}] ${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => {
      consoleLines.push(`[${vp.name}] pageerror: ${e.message}`);
      check(`${vp.name}: no uncaught page errors`, false, e.message);
    });
    await talk(page, vp);
    await studio(page, vp);
    await context.close();
  }
} finally {
  await browser.close();
  writeFileSync(join(outDir, "console.log"), consoleLines.join("\n") + "\n");
  writeFileSync(join(outDir, "results.json"), JSON.stringify({ url: base, passed: failed === 0, checks: results }, null, 2) + "\n");
}

console.log(`${results.length - failed} of ${results.length} checks passed; screenshots in ${outDir}`);
process.exit(failed === 0 ? 0 : 1);
