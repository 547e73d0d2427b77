// Browser checks of the web UI against a running `veil demo`, in headless Chromium, saving screenshots.
// Usage: VEIL_URL=http://127.0.0.1:8080 VEIL_USER=sales VEIL_PASSWORD=… VEIL_DPO_PASSWORD=… \
//        VEIL_ADMIN_PASSWORD=… node web.mjs [screenshot dir]
// Exits non-zero on the first failed check. Chromium comes from Debian (`/usr/bin/chromium`).
// Run by `cargo test` (crates/veil/tests/browser.rs) against a fresh demo server.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";

/** The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 secret, `offset` steps from now. */
function totp(secret, offset = 0) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const character of secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(character).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000) + offset));
  const digest = createHmac("sha1", key).update(counter).digest();
  const at = digest[digest.length - 1] & 0xf;
  const number = (digest.readUInt32BE(at) & 0x7fffffff) % 1000000;
  return number.toString().padStart(6, "0");
}

const base = process.env.VEIL_URL ?? "http://127.0.0.1:8080";
const user = process.env.VEIL_USER ?? "sales";
const password = process.env.VEIL_PASSWORD;
const dpoPassword = process.env.VEIL_DPO_PASSWORD;
const adminPassword = process.env.VEIL_ADMIN_PASSWORD;
const shots = process.argv[2] ?? "../docs/screenshots";
assert.ok(password, "set VEIL_PASSWORD (printed by `veil demo`)");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const errors = [];
try {
  for (const [label, viewport] of [["desktop", { width: 1280, height: 800 }], ["phone", { width: 390, height: 844 }]]) {
    const context = await browser.newContext({ viewport, locale: "en-US" });
    const page = await context.newPage();
    // A CSP violation or script error is a failure, not noise. Chromium also logs every non-2xx document (the
    // intended 422 of a refused form, the favicon's 404) as "Failed to load resource": those are expected.
    page.on("console", (message) => {
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(String(error)));

    await page.goto(`${base}/customers`);
    assert.match(page.url(), /\/login/, "signed-out visitors are sent to sign in");
    await page.screenshot({ path: `${shots}/login-${label}.png`, fullPage: true });
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/customers$/);

    // The list is masked: masks present, no full mainland mobile or 18-character ID number anywhere.
    const table = await page.locator("main").innerText();
    assert.match(table, /\*\*\*\*/, "masked values shown");
    assert.doesNotMatch(table, /(?<!\d)1[3-9]\d{9}(?!\d)/, "no plaintext mobile");
    assert.doesNotMatch(table, /(?<![\dX])\d{17}[\dX](?![\dX])/, "no plaintext ID number");
    await page.screenshot({ path: `${shots}/customers-${label}.png`, fullPage: true });

    await page.locator("table a").first().click();
    await page.waitForURL(/\/customers\/[0-9a-f-]+$/);
    assert.ok(await page.locator("svg.lock").count() > 0, "lock icons on masked fields");
    await page.screenshot({ path: `${shots}/customer-${label}.png`, fullPage: true });

    // A wrong check digit is explained next to the field, in the user's language.
    await page.goto(`${base}/customers/new`);
    await page.getByLabel("Name").fill("测试客户");
    await page.getByLabel("Resident ID number").fill("330106197312210035");
    await page.getByRole("button", { name: "Save customer" }).click();
    await page.locator("#id_number-error").waitFor();
    assert.match(await page.locator("#id_number-error").innerText(), /check digit is wrong/);
    await page.screenshot({ path: `${shots}/customer-new-error-${label}.png`, fullPage: true });

    // Language switch: the same page in Chinese, remembered.
    await page.getByRole("link", { name: "简体中文" }).click();
    await page.waitForURL(/\/customers\/new$/);
    assert.equal(await page.locator("html").getAttribute("lang"), "zh-CN");
    await page.goto(`${base}/customers`);
    assert.match(await page.locator("h1").innerText(), /客户/);
    await page.screenshot({ path: `${shots}/customers-zh-${label}.png`, fullPage: true });
    await context.close();
  }
  if (dpoPassword && adminPassword) {
    await governedReveal(browser, errors);
  } else {
    console.log("skipping the request → approve → reveal flow: set VEIL_DPO_PASSWORD and VEIL_ADMIN_PASSWORD");
  }
  assert.deepEqual(errors, [], "no console errors (CSP violations included)");
  console.log("web UI browser checks passed");
} finally {
  await browser.close();
}

/** A signed-in page in a fresh context (a second "browser" for another person). */
async function signIn(browser, errors, username, secret, { code } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${base}/login`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  if (code) {
    await page.getByLabel("Verification code").fill(code);
    await page.getByRole("button", { name: "Verify" }).click();
  }
  try {
    await page.waitForURL(/\/dashboard$/, { timeout: 10000 });
  } catch (error) {
    throw new Error(`${username} did not reach the dashboard: ${page.url()}\n${await page.locator("main").innerText()}`);
  }
  return { context, page };
}

/** Sales enrols MFA, records consent, asks for an ID number; the DPO approves in a second session; sales reveals;
 * the DPO finds the reveal in the audit log; then the admin pages, and the language switch. */
async function governedReveal(browser, errors) {
  // Sales: two-step verification from the account page (QR code drawn by the server).
  let sales = await signIn(browser, errors, user, password);
  let page = sales.page;
  await page.screenshot({ path: `${shots}/dashboard-desktop.png`, fullPage: true });
  await page.goto(`${base}/account`);
  await page.getByRole("button", { name: "Set up two-step verification" }).click();
  await page.locator("svg.qr").waitFor();
  await page.screenshot({ path: `${shots}/account-mfa-desktop.png`, fullPage: true });
  const secret = (await page.locator("code.secret").innerText()).trim();
  await page.getByLabel("Code from the app").fill(totp(secret));
  await page.getByRole("button", { name: "Turn on" }).click();
  const recovery = (await page.locator("ul.codes li").first().innerText()).trim();
  // A fresh sign-in with the second factor: the step-up that requests and reveals need.
  await page.getByRole("button", { name: "Sign out" }).click();
  await sales.context.close();
  sales = await signIn(browser, errors, user, password, { code: recovery });
  page = sales.page;

  // Consent on the customer page, then "Request access" for the ID number.
  await page.goto(`${base}/customers`);
  await page.locator("table a").first().click();
  await page.waitForURL(/\/customers\/[0-9a-f-]+$/);
  const customerUrl = page.url();
  await page.getByText("Record a consent").click();
  await page.getByLabel("Customer service").check();
  await page.getByLabel("Resident ID number").check();
  await page.getByLabel(/Separate consent for sensitive personal information/).check();
  await page.getByLabel("Or the e-consent event id").fill("e-consent-2026-0001");
  await page.getByRole("button", { name: "Save consent" }).click();
  await page.getByText("The consent was recorded.").waitFor();
  await page.screenshot({ path: `${shots}/customer-consents-desktop.png`, fullPage: true });

  // A note with a mobile number in it is shown masked in place; the typed number is nowhere on the page.
  await page.getByLabel("New note").fill("客户来电，手机13812345678，希望周末看房");
  await page.getByRole("button", { name: "Add note" }).click();
  await page.locator(".note-body", { hasText: "138****5678" }).first().waitFor();
  assert.doesNotMatch(await page.locator("main").innerText(), /13812345678/, "the note's number is masked");
  await page.locator("#notes").screenshot({ path: `${shots}/customer-notes-desktop.png` });

  await page.getByRole("link", { name: "Request access Resident ID number" }).click();
  await page.getByLabel("Purpose in words").fill("verify the caller's identity before a refund");
  // The prerequisite checks are evaluated live as the form is filled in: the consent just recorded covers it.
  await page.locator('#live-checks li[data-check="consent"].met').waitFor();
  await page.locator('#live-checks li[data-check="legal_basis"].met').waitFor();
  assert.match(await page.locator("#live-checks").innerText(), /Approvals needed/);
  await page.screenshot({ path: `${shots}/request-live-desktop.png`, fullPage: true });
  await page.getByRole("button", { name: "Submit request" }).click();
  await page.getByText("Waiting for approval").waitFor();

  // The DPO, in a second session, approves from the inbox.
  const dpo = await signIn(browser, errors, "dpo", dpoPassword);
  await dpo.page.goto(`${base}/approvals`);
  await dpo.page.screenshot({ path: `${shots}/approvals-desktop.png`, fullPage: true });
  await dpo.page.locator("form.decide textarea").first().fill("identity check before a refund is legitimate");
  await dpo.page.locator("form.decide").first().getByRole("button", { name: /^Approve/ }).click();
  await dpo.page.getByText("Approved. The decision was recorded.").waitFor();

  // Sales reveals the ID number: shown once, on this no-store page.
  await page.goto(customerUrl);
  await page.getByRole("button", { name: "Reveal Resident ID number" }).click();
  const revealed = await page.locator(".revealed").innerText();
  assert.match(revealed, /^\d{17}[\dX]$/, "the revealed ID number");
  await page.goto(`${base}/access`);
  assert.match(await page.locator("main").innerText(), /min left/);
  await page.screenshot({ path: `${shots}/access-desktop.png`, fullPage: true });

  // A ticket about the customer: its free text masked, its SLA deadlines shown; a comment stops the first timer.
  await page.goto(customerUrl);
  await page.getByRole("link", { name: "New ticket" }).click();
  await page.getByLabel(/^Subject/).fill("空调不制冷，请回电13812345678");
  await page.getByRole("button", { name: "Open ticket" }).click();
  await page.getByText("The ticket was opened.", { exact: true }).waitFor();
  assert.match(await page.locator("h1").innerText(), /138\*\*\*\*5678/, "the subject is masked");
  await page.getByLabel("Add a comment").fill("已联系客户，安排师傅上门");
  await page.getByRole("button", { name: "Add comment" }).click();
  await page.getByText("The comment was added.", { exact: true }).waitFor();
  assert.doesNotMatch(await page.locator("main").innerText(), /13812345678/);
  await page.screenshot({ path: `${shots}/ticket-desktop.png`, fullPage: true });
  await page.goto(`${base}/tickets`);
  assert.match(await page.locator("main").innerText(), /138\*\*\*\*5678/);
  await page.screenshot({ path: `${shots}/tickets-desktop.png`, fullPage: true });

  // The DPO sees the reveal in the audit log, and verifies the chain.
  await dpo.page.goto(`${base}/audit?action=customer.reveal`);
  assert.match(await dpo.page.locator("table.audit").innerText(), /customer\.reveal/);
  await dpo.page.getByRole("button", { name: "Verify chain" }).click();
  await dpo.page.getByText("The audit chain is intact.").waitFor();
  await dpo.page.screenshot({ path: `${shots}/audit-desktop.png`, fullPage: true });
  // Language switch on the DPO's pages.
  await dpo.page.goto(`${base}/audit`);
  await dpo.page.getByRole("link", { name: "简体中文" }).click();
  await dpo.page.waitForURL(/\/audit$/);
  assert.match(await dpo.page.locator("h1").innerText(), /审计日志/);
  await dpo.context.close();
  await sales.context.close();

  // The administrator's pages (screenshots; nothing is locked down).
  const admin = await signIn(browser, errors, "admin", adminPassword);
  await admin.page.goto(`${base}/security`);
  assert.match(await admin.page.locator("h1").innerText(), /Security/);
  await admin.page.screenshot({ path: `${shots}/security-desktop.png`, fullPage: true });
  await admin.page.goto(`${base}/backups`);
  await admin.page.screenshot({ path: `${shots}/backups-desktop.png`, fullPage: true });
  await admin.page.goto(`${base}/users`);
  assert.match(await admin.page.locator("main").innerText(), /dpo/);
  await admin.page.screenshot({ path: `${shots}/users-desktop.png`, fullPage: true });
  await admin.page.goto(`${base}/policies`);
  assert.match(await admin.page.locator("main").innerText(), /\*\*\*\*/, "the preview shows masked samples");
  await admin.page.screenshot({ path: `${shots}/policies-desktop.png`, fullPage: true });
  // The dashboard in Chinese, with its charts.
  await admin.page.goto(`${base}/dashboard`);
  await admin.page.getByRole("link", { name: "简体中文" }).click();
  await admin.page.waitForURL(/\/dashboard$/);
  await admin.page.screenshot({ path: `${shots}/dashboard-zh-desktop.png`, fullPage: true });
  await admin.context.close();
}
