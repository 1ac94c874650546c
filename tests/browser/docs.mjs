// Browser test of the API reference at /docs: a real careq (release binary), Debian's Chromium
// driven by playwright-core. Authorizes with a bearer token in the page, tries POST /v1/patients
// from the page with the operation's request example (its clinic_id set to a clinic made here),
// sees 201 in the page, then finds the patient through the API. Fails on any request that leaves
// the origin, any CSP violation or script error. Saves a screenshot as a test artifact.
// Usage: node docs.mjs BASE_URL ADMIN_PASSWORD [SCREENSHOT_PATH]
import { chromium } from "playwright-core";

const [base, password, shot = "docs.png"] = process.argv.slice(2);
if (!base || !password) {
  console.error("usage: node docs.mjs BASE_URL ADMIN_PASSWORD [SCREENSHOT_PATH]");
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
const clinic = await api("POST", "/v1/clinics", token, { name: "Docs test", timezone: "Europe/Vienna", ticket_prefix: "D" });
expect(clinic.status === 201, `clinic creation answered ${clinic.status}`);
const spec = await api("GET", "/openapi.json");
const example = spec.json.paths["/v1/patients"].post.requestBody.content["application/json"].examples?.typical?.value;
expect(example && example.given_name, "POST /v1/patients has a request example");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const external = [];
  const problems = [];
  page.on("request", (r) => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) external.push(r.url()); });
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  await page.goto(base + "/docs");

  // Authorize in the page (RapiDoc's bearer field; Playwright's locators pierce its shadow DOM).
  await page.locator("#http-bearer-api-key-input").fill(token, { timeout: 20000 });
  await page.locator("#security-scheme-bearer button", { hasText: "SET" }).click();

  // Open the operation; its body editor holds the spec's request example.
  const op = page.locator('[id="post-/v1/patients"]');
  await op.locator(".endpoint-head").click();
  const editor = op.locator("textarea").first();
  const shown = JSON.parse(await editor.inputValue({ timeout: 15000 }));
  expect(JSON.stringify(shown) === JSON.stringify(example),
    `the page shows the spec's request example (${JSON.stringify(shown)})`);
  shown.clinic_id = clinic.json.id;
  await editor.fill(JSON.stringify(shown, null, 2));
  await op.locator("button", { hasText: /^\s*TRY\s*$/ }).click();

  const message = op.locator(".response-message");
  await message.filter({ hasText: "201" }).waitFor({ timeout: 15000 });
  const text = (await message.textContent()).replace(/\s+/g, " ").trim();
  console.log("the page shows:", text);

  // The patient exists, as the API sees it.
  const found = await api("GET", `/v1/patients?clinic_id=${clinic.json.id}&limit=10`, token);
  expect(found.status === 200, `search answered ${found.status}`);
  const match = found.json.items.filter((p) => p.family_name === example.family_name && p.given_name === example.given_name);
  expect(match.length === 1, `one patient created from the page (found ${match.length})`);
  const read = await api("GET", `/v1/patients/${match[0].id}`, token);
  expect(read.status === 200 && read.json.date_of_birth === example.date_of_birth, "the patient reads back");

  await page.screenshot({ path: shot });
  expect(external.length === 0, `requests left the origin: ${external.join(", ")}`);
  expect(problems.length === 0, `page errors: ${problems.join(" | ")}`);
  console.log("docs page: authorized, tried POST /v1/patients from the page (201), patient found via the API");
} finally {
  await browser.close();
}
