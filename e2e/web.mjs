// Browser checks of the web UI against a running `veil demo`, in headless Chromium, saving screenshots.
// Usage: VEIL_URL=http://127.0.0.1:8080 VEIL_USER=sales VEIL_PASSWORD=… node web.mjs [screenshot dir]
// Exits non-zero on the first failed check. Chromium comes from Debian (`/usr/bin/chromium`).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const base = process.env.VEIL_URL ?? "http://127.0.0.1:8080";
const user = process.env.VEIL_USER ?? "sales";
const password = process.env.VEIL_PASSWORD;
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
    await page.getByLabel("Password").fill(password);
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
  assert.deepEqual(errors, [], "no console errors (CSP violations included)");
  console.log("web UI browser checks passed");
} finally {
  await browser.close();
}
