// Browser test of the waiting-room board: a real careq (release binary), Debian's Chromium
// driven by playwright-core. Issues and calls a ticket through the API and waits for its
// number to appear on the page; saves a screenshot as a test artifact.
// Usage: node board.mjs BASE_URL ADMIN_PASSWORD [SCREENSHOT_PATH]
import { chromium } from "playwright-core";

const [base, password, shot = "board.png"] = process.argv.slice(2);
if (!base || !password) {
  console.error("usage: node board.mjs BASE_URL ADMIN_PASSWORD [SCREENSHOT_PATH]");
  process.exit(2);
}

async function api(method, path, token, body) {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

function expect(cond, what) {
  if (!cond) {
    console.error("FAILED:", what);
    process.exit(1);
  }
}

const login = await api("POST", "/v1/auth/token", null, { username: "admin", password });
expect(login.status === 200, `sign-in answered ${login.status}`);
const token = login.json.access_token;
const clinic = await api("POST", "/v1/clinics", token, { name: "Board test", timezone: "Europe/Vienna", ticket_prefix: "B" });
expect(clinic.status === 201, `clinic creation answered ${clinic.status}`);
const board = await api("POST", `/v1/clinics/${clinic.json.id}/board`, token);
expect(board.status === 200, `board link answered ${board.status}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base.replace("http", "ws")) && !r.url().startsWith(base)) external.push(r.url()); });
  await page.goto(base + board.json.url);
  await page.waitForFunction(() => document.getElementById("status").textContent === "Live", null, { timeout: 15000 });

  const t1 = await api("POST", `/v1/clinics/${clinic.json.id}/queue/tickets`, token, { priority: "normal" });
  const t2 = await api("POST", `/v1/clinics/${clinic.json.id}/queue/tickets`, token, { priority: "urgent" });
  expect(t1.status === 201 && t2.status === 201, "tickets issued");
  await page.waitForFunction(() => document.getElementById("next").textContent.includes("B-002"), null, { timeout: 15000 });

  const called = await api("POST", `/v1/clinics/${clinic.json.id}/queue/call-next`, token, { counter: "3" });
  expect(called.status === 200 && called.json.number === "B-002", "the urgent ticket is called first");
  await page.waitForFunction(
    () => { const s = document.getElementById("serving").textContent; return s.includes("B-002") && s.includes("Counter 3"); },
    null, { timeout: 15000 });
  const text = await page.textContent("body");
  expect(!text.includes("Board test patient"), "no patient data on the board");
  expect(external.length === 0, `the page loaded nothing from elsewhere: ${external.join(", ")}`);
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`board test passed: B-002 shown at counter 3; screenshot ${shot}`);
} finally {
  await browser.close();
}
