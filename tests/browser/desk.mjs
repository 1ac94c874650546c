// Browser test of the front desk against a real careq (release binary) in Debian's Chromium:
// see the sign-in page's 429 and 401 messages, sign in, register a patient (through a field error and a duplicate prompt), issue and print a
// ticket, call it at a counter and see it on the board in another tab, meet a 412 when someone
// else changed it, recall it, mark it served, take a number at the kiosk. The pages' CSP stays enforced (a violation is a console error, which
// fails the test). axe-core checks every page (no serious or critical violation); a
// screenshot of every page goes to OUT_DIR.
// Reception also checks in an appointment booked for later today.
// Time zones: the browser runs in Pacific/Kiritimati (UTC+14) and the clinic is in
// Pacific/Pago_Pago (UTC-11), 25 hours apart and both far from UTC, so the browser's date is never
// the clinic's and the three clocks differ: every day and time a page shows must be the clinic's.
// The board and kiosk keys leave the address bar once read, survive a reload from the page's
// storage, and no request from those pages carries a Referer.
// Usage: node desk.mjs BASE_URL ADMIN_PASSWORD OUT_DIR
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const axePath = require.resolve("axe-core/axe.min.js");
const [base, password, out = "."] = process.argv.slice(2);
if (!base || !password) {
  console.error("usage: node desk.mjs BASE_URL ADMIN_PASSWORD OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

function expect(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
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

const clinicZone = "Pacific/Pago_Pago";
const browserZone = "Pacific/Kiritimati";
// A day (YYYY-MM-DD) and a time as the pages show them (en-GB, the browser's language here) in a zone.
const dayIn = (zone, d) => new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
const timeIn = (zone, d) => new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit" }).format(d);
const dateTimeIn = (zone, d) => new Intl.DateTimeFormat("en-GB", {
  timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).format(d);

// Arrange through the API: a clinic, two staff, an existing patient (for the duplicate prompt),
// the board and kiosk links.
const admin = (await api("POST", "/v1/auth/token", null, { username: "admin", password })).json.access_token;
const clinic = await api("POST", "/v1/clinics", admin, { name: "Riverside Clinic", timezone: clinicZone, ticket_prefix: "D" });
expect(clinic.status === 201, `clinic creation answered ${clinic.status}`);
const clinicId = clinic.json.id;
const staffPassword = "desk-test-password-1";
const staff = {};
for (const [username, role] of [["reception", "receptionist"], ["doctor", "clinician"]]) {
  const u = await api("POST", "/v1/users", admin, { username, password: staffPassword, role, clinic_ids: [clinicId] });
  expect(u.status === 201, `creating ${username} answered ${u.status}`);
  staff[username] = u.json.id;
}
const existing = await api("POST", "/v1/patients", admin, {
  clinic_id: clinicId, given_name: "Amelia", family_name: "Pond", date_of_birth: "1989-04-01", sex: "female" });
expect(existing.status === 201, `seed patient answered ${existing.status}`);
// An appointment later today on the clinic's clock (the page lists the clinic's day), to check
// in at reception.
const start = new Date(Date.now() + 3 * 60 * 1000);
start.setUTCSeconds(0, 0);
const sameDay = dayIn(clinicZone, start) === dayIn(clinicZone, new Date());
expect(dayIn(browserZone, start) !== dayIn(clinicZone, start), "the browser's day is not the clinic's");
if (sameDay) {
  const booked = await api("POST", "/v1/appointments", admin, { clinic_id: clinicId, patient_id: existing.json.id,
    clinician_id: staff.doctor, start: start.toISOString().replace(/\.\d+Z$/, "Z"), duration_minutes: 15, reason: "check-up" });
  expect(booked.status === 201, `booking answered ${booked.status}: ${JSON.stringify(booked.json)}`);
}
const board = await api("POST", `/v1/clinics/${clinicId}/board`, admin);
const kiosk = await api("POST", `/v1/clinics/${clinicId}/kiosk`, admin);
expect(board.status === 200 && kiosk.status === 200, "board and kiosk links");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const external = [];
const consoleErrors = [];
const sent = []; // every request's Referer, by the page that sent it
async function newPage() {
  // Each staff tab is its own context: sessionStorage (the token) is per tab anyway.
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 }, timezoneId: browserZone, locale: "en-GB" });
  const page = await context.newPage();
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(base) && !u.startsWith(base.replace("http", "ws"))) external.push(u);
    sent.push(r.allHeaders().then((h) => ({ from: r.frame().url(), url: u, referer: h.referer })).catch(() => null));
  });
  // Chromium logs every 4xx answer as a console error; those are expected here (401, 409, 422).
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

// axe-core goes in through DevTools evaluation: `addScriptTag` would add an inline script, which
// the pages' strict CSP rightly refuses, and the test keeps that CSP enforced throughout.
const axeSource = readFileSync(axePath, "utf8");
async function axe(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result) console.log(`  axe ${name}: ${v.impact} ${v.id} ${v.nodes.join(", ")}`);
  expect(bad.length === 0, `axe on ${name}: ${JSON.stringify(bad)}`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${out}/desk-${name}.png`, fullPage: true });
}

async function signIn(page, username) {
  await page.goto(base + "/desk");
  await page.fill("#username", username);
  await page.fill("#password", "wrong password");
  await page.click("#signin-button");
  await page.waitForFunction(() => document.getElementById("signin-message").textContent.includes("Wrong username or password"));
  await page.fill("#password", staffPassword);
  await page.click("#signin-button");
  await page.waitForURL(/\/desk\/(reception|counter)$/);
  const token = await page.evaluate(() => sessionStorage.getItem("careq.token"));
  expect(token && !page.url().includes(token), "the token is in sessionStorage, never in the URL");
}

try {
  // 1. Sign-in page, with the 401 message on the way.
  const desk = await newPage();
  await desk.goto(base + "/desk");
  // Too many failed sign-ins for one name from one address: the 429 is shown with its wait.
  let locked = false;
  for (let i = 0; i < 12 && !locked; i++) {
    await desk.fill("#username", "intruder");
    await desk.fill("#password", `guess ${i}`);
    await desk.click("#signin-button");
    await desk.waitForFunction(() => !document.getElementById("signin-button").disabled &&
      !document.getElementById("signin-message").textContent.startsWith("Signing in"));
    locked = (await desk.textContent("#signin-message")).startsWith("Too many failed attempts. Try again in");
  }
  expect(locked, "repeated failures show the 429 message");
  await axe(desk, "sign-in");
  await shot(desk, "signin");
  await signIn(desk, "reception");
  expect(desk.url().endsWith("/desk/reception"), "a receptionist lands on reception");
  await desk.waitForFunction(() => document.getElementById("clinic").selectedOptions[0]?.textContent === "Riverside Clinic");

  // 2. Reception: search as you type finds the existing record.
  await desk.fill("#search", "Pon");
  await desk.waitForFunction(() => document.getElementById("results").textContent.includes("Pond, Amelia"));

  // Register: a date of birth in the future is a field error shown next to its field…
  await desk.fill("#given_name", "Amelia");
  await desk.fill("#family_name", "Pond");
  await desk.fill("#date_of_birth", "2999-01-01");
  await desk.selectOption("#sex", "female");
  await desk.click("#register-button");
  await desk.waitForFunction(() => document.getElementById("date_of_birth-error").textContent.length > 0);
  expect(await desk.getAttribute("#date_of_birth", "aria-invalid") === "true", "the field is marked invalid");
  const fieldError = await desk.textContent("#date_of_birth-error");
  console.log(`  field error shown: ${fieldError}`);
  // …and the same names and birth date as a record that exists is a probable duplicate.
  await desk.fill("#date_of_birth", "1989-04-01");
  await desk.click("#register-button");
  await desk.waitForSelector("#duplicate:not([hidden])");
  expect(await desk.isVisible("#use-existing") && await desk.isVisible("#create-anyway"), "both choices offered");
  expect((await desk.textContent("#date_of_birth-error")) === "", "the fixed field's error is gone");
  await axe(desk, "reception (duplicate prompt)");
  await shot(desk, "reception-duplicate");
  await desk.click("#create-anyway");
  await desk.waitForFunction(() => document.getElementById("register-message").textContent.startsWith("Registered Amelia Pond"));
  expect(await desk.isHidden("#duplicate"), "the prompt closes");

  // Issue a walk-in ticket for the new record, and print it.
  await desk.selectOption("#priority", "urgent");
  await desk.click("#issue");
  await desk.waitForFunction(() => document.getElementById("receipt-number").textContent === "D-001");
  // The receipt's date and time are the clinic's.
  const d1Issued = new Date((await api("GET", `/v1/clinics/${clinicId}/queue`, admin)).json.items.find((t) => t.number === "D-001").issued_at);
  const receiptTime = await desk.textContent("#receipt-time");
  expect(receiptTime === dateTimeIn(clinicZone, d1Issued),
    `the receipt shows the clinic's date and time (${dateTimeIn(clinicZone, d1Issued)}), not ${receiptTime}`);
  await axe(desk, "reception");
  await shot(desk, "reception");
  await desk.emulateMedia({ media: "print" });
  const printed = await desk.evaluate(() => {
    const visible = (el) => !!el && getComputedStyle(el).display !== "none" && el.getClientRects().length > 0;
    const shown = [...document.querySelectorAll("body *")].filter((el) => visible(el) && el.children.length === 0);
    return { text: shown.map((el) => el.textContent).join(" | "), registerShown: visible(document.getElementById("register")) };
  });
  console.log(`  printed receipt: ${printed.text}`);
  expect(printed.text.includes("Riverside Clinic"), "the receipt names the clinic");
  expect(printed.text.includes("D-001"), "the receipt shows the number");
  expect(/\d{1,2}:\d{2}/.test(printed.text), "the receipt shows the time");
  expect(!/Amelia|Pond|1989/.test(printed.text), "no patient data on the receipt");
  expect(!printed.registerShown, "only the receipt is printed");
  await desk.screenshot({ path: `${out}/desk-receipt-print.png`, clip: { x: 0, y: 0, width: 400, height: 400 } });
  await desk.emulateMedia({ media: "screen" });
  // Check in today's appointment: its ticket (normal priority) is the next number.
  let nextNumber = 2;
  if (sameDay) {
    await desk.waitForFunction(() => document.getElementById("appointments").textContent.includes("Amelia Pond"));
    // The clinic's today, at the clinic's time: neither the browser's zone nor UTC.
    const listed = await desk.textContent("#appointments");
    const local = timeIn(clinicZone, start);
    console.log(`  today's appointment listed as: ${listed} (clinic ${local}, browser ${timeIn(browserZone, start)}, UTC ${timeIn("UTC", start)})`);
    expect(listed.includes(local), `the appointment shows the clinic's time ${local}: ${listed}`);
    expect(!listed.includes(timeIn(browserZone, start)) && !listed.includes(timeIn("UTC", start)),
      "the appointment's time is not the browser's or UTC's");
    await desk.click("#appointments button");
    await desk.waitForFunction(() => document.getElementById("receipt-number").textContent === "D-002");
    await desk.waitForFunction(() => document.getElementById("appointments").textContent.includes("checked in"));
    nextNumber = 3;
  } else {
    console.log("  (skipped the check-in and the appointment's day: within 3 minutes of the clinic's midnight)");
  }
  const kioskNumber = `D-00${nextNumber}`;

  // 4. Board in another tab (the clinic's board key, no staff login).
  const boardPage = await newPage();
  // The board's socket passes through Playwright, so the test can cut it like a network drop.
  let dropBoard = false;
  const boardSockets = [];
  await boardPage.routeWebSocket(/\/queue\/live/, (ws) => {
    if (dropBoard) { ws.close(); return; }
    ws.connectToServer();
    boardSockets.push(ws);
  });
  await boardPage.goto(base + board.json.url);
  await boardPage.waitForFunction(() => document.getElementById("status").textContent === "Live");
  // The key left the address bar (and the socket's URL) for the page's storage; a reload
  // without it (a restarted wall screen) comes back live from that storage.
  const boardKey = board.json.url.split("key=")[1];
  expect(!boardPage.url().includes(boardKey), `the board's address keeps no key: ${boardPage.url()}`);
  expect(boardSockets.every((ws) => !ws.url().includes(boardKey)), "the socket's URL holds no key");
  await boardPage.goto(`${base}/board/${clinicId}`);
  await boardPage.waitForFunction(() => document.getElementById("status").textContent === "Live");
  await boardPage.waitForFunction(() => document.getElementById("clinic").textContent === "Riverside Clinic");
  await boardPage.waitForFunction(() => document.getElementById("next").textContent.includes("D-001"));
  // The chime starts with a tap (browsers refuse sound before one); the call below then plays it
  // with no autoplay error in the console.
  await boardPage.click("#chime");
  expect(await boardPage.getAttribute("#chime", "aria-pressed") === "true", "the chime is on");
  // The wall clock is the clinic's.
  const before = timeIn(clinicZone, new Date());
  const clock = await boardPage.textContent("#clock");
  const after = timeIn(clinicZone, new Date());
  expect(clock === before || clock === after, `the board's clock shows the clinic's time ${before}, not ${clock}`);

  // 3. Counter: a clinician calls the ticket to counter 2.
  const counter = await newPage();
  await signIn(counter, "doctor");
  expect(counter.url().endsWith("/desk/counter"), "a clinician lands on the counter");
  await counter.waitForFunction(() => document.getElementById("live").textContent === "(live)");
  await counter.waitForFunction(() => document.getElementById("waiting").textContent.includes("D-001"));
  const waitingText = await counter.textContent("#waiting");
  expect(waitingText.includes(`waiting since ${timeIn(clinicZone, d1Issued)}`),
    `the counter shows when D-001 came on the clinic's clock (${timeIn(clinicZone, d1Issued)}): ${waitingText}`);
  await counter.fill("#counter-name", "2");
  await counter.click("#call-next");
  await counter.waitForFunction(() => document.getElementById("current-number").textContent === "D-001");
  await boardPage.waitForFunction(() => {
    const s = document.getElementById("serving").textContent;
    return s.includes("D-001") && s.includes("Counter 2");
  });
  expect(!/Amelia|Pond/.test(await boardPage.textContent("body")), "no patient data on the board");
  await axe(boardPage, "board");
  await shot(boardPage, "board");
  await axe(counter, "counter");
  await shot(counter, "counter");
  // Someone else marks it a no-show meanwhile (through the API, with its current ETag): the
  // counter's "Served" is sent with the old one, gets 412, reloads and says so.
  const d1 = (await api("GET", `/v1/clinics/${clinicId}/queue`, admin)).json.items.find((t) => t.number === "D-001");
  const current = await fetch(`${base}/v1/tickets/${d1.id}`, { headers: { authorization: `Bearer ${admin}` } });
  const moved = await fetch(`${base}/v1/tickets/${d1.id}`, {
    method: "PATCH",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/merge-patch+json", "if-match": current.headers.get("etag") },
    body: JSON.stringify({ status: "no_show" }),
  });
  expect(moved.status === 200, `the other change answered ${moved.status}`);
  await counter.click("#served");
  await counter.waitForFunction(() => document.getElementById("ticket-message").textContent.startsWith("Someone else changed this ticket"));
  await counter.waitForFunction(() => document.getElementById("current-state").textContent.startsWith("no show"));
  // The no-show's one recall puts it back; it is called again and served.
  await counter.click("#recall");
  await counter.waitForFunction(() => document.getElementById("ticket-message").textContent === "D-001 is back in the queue.");
  await counter.click("#call-next");
  await counter.waitForFunction(() => document.getElementById("current-state").textContent.startsWith("called"));
  await counter.click("#served");
  await counter.waitForFunction(() => document.getElementById("ticket-message").textContent === "D-001 served.");
  const servedTicket = await api("GET", `/v1/clinics/${clinicId}/queue`, admin);
  expect(!servedTicket.json.items.some((t) => t.number === "D-001"), "D-001 left the queue");
  if (sameDay) {
    // The checked-in appointment's ticket is next.
    await counter.click("#call-next");
    await counter.waitForFunction(() => document.getElementById("current-number").textContent === "D-002");
    await counter.click("#served");
    await counter.waitForFunction(() => document.getElementById("ticket-message").textContent === "D-002 served.");
  }
  await counter.click("#call-next");
  await counter.waitForFunction(() => document.getElementById("counter-message").textContent === "Nobody is waiting.");

  // 5. Kiosk: a patient takes a number; the counter's list and the board show it live.
  const kioskPage = await newPage();
  await kioskPage.goto(base + kiosk.json.url);
  const kioskKey = kiosk.json.url.split("key=")[1];
  await kioskPage.waitForFunction(() => !location.search);
  expect(!kioskPage.url().includes(kioskKey), `the kiosk's address keeps no key: ${kioskPage.url()}`);
  // A restarted kiosk still has its key.
  await kioskPage.goto(`${base}/kiosk/${clinicId}`);
  await axe(kioskPage, "kiosk");
  await kioskPage.click("#take");
  await kioskPage.waitForFunction((n) => document.getElementById("shown").textContent === n, kioskNumber);
  await shot(kioskPage, "kiosk");
  await counter.waitForFunction((n) => document.getElementById("waiting").textContent.includes(n), kioskNumber);
  await boardPage.waitForFunction((n) => document.getElementById("next").textContent.includes(n), kioskNumber);

  // Tablet sizes: no page is wider than the screen, portrait or landscape.
  for (const [name, page] of [["reception", desk], ["counter", counter], ["board", boardPage], ["kiosk", kioskPage]]) {
    for (const viewport of [{ width: 768, height: 1024 }, { width: 1024, height: 768 }]) {
      await page.setViewportSize(viewport);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      expect(!overflow, `${name} fits a ${viewport.width}×${viewport.height} tablet`);
    }
  }

  // The board's connection drops (and stays down a while): it says it is reconnecting, and
// comes back live by itself.
  dropBoard = true;
  for (const ws of boardSockets) await ws.close();
  await boardPage.waitForFunction(() => document.body.classList.contains("reconnecting") &&
    document.getElementById("status").textContent === "Reconnecting…", null, { timeout: 15000 });
  expect(await boardPage.isVisible("#banner"), "the reconnecting banner is visible");
  await boardPage.screenshot({ path: `${out}/desk-board-reconnecting.png` });
  dropBoard = false;
  await boardPage.waitForFunction(() => document.getElementById("status").textContent === "Live" &&
    !document.body.classList.contains("reconnecting"), null, { timeout: 20000 });

  // Sign-out revokes the token.
  const token = await desk.evaluate(() => sessionStorage.getItem("careq.token"));
  await desk.click("#signout");
  await desk.waitForURL(/\/desk\?signed_out=1$/);
  expect((await api("GET", "/v1/me", token)).status === 401, "the token is revoked");

  expect(external.length === 0, `the pages loaded nothing from elsewhere: ${external.join(", ")}`);
  // The board's and the kiosk's requests (stylesheet, script, socket, API) carry no Referer, which
  // would hold the page's address with its key.
  const fromScreens = (await Promise.all(sent)).filter((r) => r && /\/(board|kiosk)\//.test(r.from));
  expect(fromScreens.length > 0, "the screens' requests were seen");
  const referred = fromScreens.filter((r) => r.referer);
  expect(referred.length === 0, `no Referer from the board or kiosk: ${referred.map((r) => `${r.url} <- ${r.referer}`).join(", ")}`);
  expect(consoleErrors.length === 0, `no script errors: ${consoleErrors.join("; ")}`);
  console.log(`desk test passed; screenshots in ${out}`);
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
