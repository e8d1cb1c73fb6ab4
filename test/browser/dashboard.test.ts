// In a real browser (Debian's Chromium through playwright-core) against `wrangler dev`: an operator
// signs in to /admin, sees both dev pools, watches the queue and charts move under load, sees
// refusals counted by reason, a wrong token refused, and a provider that pushes back counted.
// Screenshots go to test/browser/screenshots/.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { toFile } from "openai";
import {
	type Browser,
	type BrowserContext,
	chromium,
	type Locator,
	type Page,
} from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devConfig } from "../../bench/lib/dev-config.ts";
import { startWranglerDev, type WranglerDev } from "../../bench/lib/wrangler-dev.ts";
import { DEV_GATEWAY_KEY, openaiClient, startDevGateway } from "../e2e/support/dev-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
	"--headless",
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
];
/** wrangler.toml's dev admin token (its SHA-256 is in [env.dev]'s adminKeySha256). */
const DEV_ADMIN_TOKEN = "tb-dev-admin";
const SCREENSHOTS = join(import.meta.dirname, "screenshots");
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
/** How long the page may take to show a change: a few refreshes on a busy two-core machine. */
const SOON = { timeout: 20_000 };

let gateway: WranglerDev;
let browser: Browser;
beforeAll(async () => {
	[gateway, browser] = await Promise.all([
		startDevGateway(),
		// A fresh temporary profile per launch: nothing carries over between runs.
		chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true }),
	]);
	await mkdir(SCREENSHOTS, { recursive: true });
});
afterAll(async () => {
	await browser?.close();
	await gateway?.stop();
});

/** A page that records every console error and uncaught exception it sees. */
async function openPage(context: BrowserContext): Promise<{ page: Page; errors: string[] }> {
	const page = await context.newPage();
	const errors: string[] = [];
	page.on("console", (message) => {
		if (message.type() === "error") errors.push(message.text());
	});
	page.on("pageerror", (error) => errors.push(error.message));
	return { page, errors };
}

/** Signs in with the mouse, or with the keyboard alone (Enter in the token field). */
async function signIn(
	page: Page,
	token: string,
	by: "mouse" | "keyboard" = "mouse",
	origin = gateway.origin,
): Promise<void> {
	await page.goto(`${origin}/admin`);
	const field = page.getByLabel("Admin token");
	await field.fill(token);
	if (by === "keyboard") await field.press("Enter");
	else await page.getByRole("button", { name: "Open the dashboard" }).click();
}

/**
 * Low-priority chat requests at `perSecond` (ten times what the dev pool refills) for `durationMs`,
 * each willing to wait `maxWaitMs`: a queue forms and the rest are refused by their deadline.
 */
async function sendLoad(
	durationMs: number,
	perSecond: number,
	maxWaitMs: number,
	origin = gateway.origin,
) {
	const statuses: number[] = [];
	const sent: Promise<void>[] = [];
	const waveMs = 100;
	const body = JSON.stringify({
		model: "gpt-4o-mini",
		messages: [{ role: "user", content: "Hi" }],
		max_tokens: 16,
	});
	for (let elapsed = 0; elapsed < durationMs; elapsed += waveMs) {
		for (let i = 0; i < (perSecond * waveMs) / 1000; i++) {
			sent.push(
				fetch(`${origin}/openai/v1/chat/completions`, {
					method: "POST",
					headers: {
						authorization: `Bearer ${DEV_GATEWAY_KEY}`,
						"content-type": "application/json",
						"x-priority": "low",
						"x-max-wait-ms": String(maxWaitMs),
					},
					body,
				}).then(
					async (response) => {
						await response.arrayBuffer();
						statuses.push(response.status);
					},
					// Counted as no answer; the test's assertions on statuses then fail.
					() => {
						statuses.push(0);
					},
				),
			);
		}
		await new Promise((wait) => setTimeout(wait, waveMs));
	}
	await Promise.all(sent);
	return statuses;
}

const card = (page: Page, pool: string) => page.getByRole("article", { name: pool });
const queued = async (page: Page, pool: string) =>
	Number((await card(page, pool).locator("[id$='-queued']").textContent())?.replace(/,/g, ""));
const countIn = async (locator: Locator) =>
	Number((await locator.textContent())?.replace(/,/g, ""));
const legendCount = (page: Page, pool: string, chart: string, kind: string) =>
	card(page, pool)
		.getByRole("figure")
		.filter({ hasText: chart })
		.locator(`li[data-kind='${kind}'] .count`);

describe("the operator dashboard", () => {
	it("is served as static files, without a token, under a CSP that allows only its own files", async () => {
		const page = await fetch(`${gateway.origin}/admin`);
		expect(page.status).toBe(200);
		expect(page.headers.get("content-type")).toMatch(/^text\/html/);
		const csp = page.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("script-src 'self'");
		expect(csp).toContain("style-src 'self'");
		expect(csp).not.toContain("unsafe-inline");
		expect(page.headers.get("x-frame-options")).toBe("DENY");
		expect(page.headers.get("referrer-policy")).toBe("no-referrer");
		expect(page.headers.get("cache-control")).toBe("no-store");
		const html = await page.text();
		expect(html).toContain('<script src="/admin/app.js" defer></script>');
		expect(html).not.toMatch(/<script>|<style|style="/);

		const script = await fetch(`${gateway.origin}/admin/app.js`);
		expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
		expect(script.headers.get("x-content-type-options")).toBe("nosniff");
		expect(await script.text()).toContain("/admin/pools");
		const styles = await fetch(`${gateway.origin}/admin/app.css`);
		expect(styles.headers.get("content-type")).toMatch(/^text\/css/);
		expect(await styles.text()).toContain("prefers-color-scheme: dark");
		const openApi = await fetch(`${gateway.origin}/admin/openapi.json`);
		expect(((await openApi.json()) as { openapi: string }).openapi).toBe("3.1.0");
		// The headers file configures the files; it is not one of them.
		expect((await fetch(`${gateway.origin}/_headers`)).status).toBe(404);
	});

	it("refuses a wrong token clearly and keeps nothing of it", async () => {
		const context = await browser.newContext({ viewport: DESKTOP });
		const { page, errors } = await openPage(context);
		await signIn(page, "not-the-admin-token", "keyboard");
		await expect
			.poll(() => page.locator("#login-error").textContent(), SOON)
			.toMatch(/^Refused: .*admin token/);
		expect(await page.locator("#status").textContent()).toBe("The admin token was refused.");
		expect(await page.locator("#pools").isHidden()).toBe(true);
		expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
		expect(page.url()).toBe(`${gateway.origin}/admin`);
		// The browser reports the 401 itself; nothing else may go wrong.
		expect(errors.filter((error) => !/status of 401/.test(error))).toEqual([]);
		await page.screenshot({ path: join(SCREENSHOTS, "refused-desktop-light.png") });
		await context.close();
	});

	it("shows both dev pools filling, queueing and refusing by reason under load", async () => {
		const context = await browser.newContext({ viewport: DESKTOP, colorScheme: "light" });
		const { page, errors } = await openPage(context);
		await signIn(page, DEV_ADMIN_TOKEN);
		await expect.poll(() => page.getByRole("article").count(), SOON).toBe(2);
		await expect(
			card(page, "openai").getByRole("heading", { name: "openai" }).isVisible(),
		).resolves.toBe(true);
		await expect(
			card(page, "anthropic").getByRole("heading", { name: "anthropic" }).isVisible(),
		).resolves.toBe(true);
		expect(page.url()).not.toContain(DEV_ADMIN_TOKEN);
		expect(await queued(page, "openai")).toBe(0);

		// The dev pool refills 10 requests a second with a burst of 100: 100 a second for 8 s
		// queues some and refuses most by their 3 s deadline.
		const load = sendLoad(8_000, 100, 3_000);
		try {
			await expect
				.poll(() => queued(page, "openai"), { ...SOON, interval: 200 })
				.toBeGreaterThan(0);
			const requestsGauge = card(page, "openai").getByRole("meter", { name: "Requests bucket" });
			expect(Number(await requestsGauge.getAttribute("aria-valuenow"))).toBeLessThan(100);
			const refusedByDeadline = legendCount(page, "openai", "Refusals by reason", "deadline");
			await expect.poll(() => countIn(refusedByDeadline), SOON).toBeGreaterThan(0);
			const admitted = legendCount(page, "openai", "Admissions", "admitted");
			await expect.poll(() => countIn(admitted), SOON).toBeGreaterThan(100);
			// The admissions line has left the baseline (y = 38 in a chart 40 high).
			const points = await card(page, "openai")
				.locator("figure polyline.s-admitted")
				.getAttribute("points");
			const heights = (points ?? "").split(" ").map((point) => Number(point.split(",")[1]));
			expect(Math.min(...heights)).toBeLessThan(20);
			expect(await page.locator("#status").textContent()).toMatch(/^Live/);

			await page.screenshot({ path: join(SCREENSHOTS, "load-desktop-light.png"), fullPage: true });
			await page.emulateMedia({ colorScheme: "dark" });
			await page.screenshot({ path: join(SCREENSHOTS, "load-desktop-dark.png"), fullPage: true });
			await page.setViewportSize(PHONE);
			await page.screenshot({ path: join(SCREENSHOTS, "load-phone-dark.png"), fullPage: true });
			await page.emulateMedia({ colorScheme: "light" });
			await page.screenshot({ path: join(SCREENSHOTS, "load-phone-light.png"), fullPage: true });
			await page.setViewportSize(DESKTOP);
		} finally {
			// Never leave requests in flight to a gateway that afterAll stops.
			await load;
		}
		const statuses = await load;
		expect(statuses.filter((status) => status === 200).length).toBeGreaterThan(100);
		expect(statuses.filter((status) => status === 429).length).toBeGreaterThan(0);
		expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([]);
		// The queue drains once the load stops; the untouched pool never queued.
		await expect.poll(() => queued(page, "openai"), SOON).toBe(0);
		expect(await queued(page, "anthropic")).toBe(0);

		// The token stays for this tab: a reload goes straight back to the pools.
		await page.reload();
		await expect.poll(() => page.getByRole("article").count(), SOON).toBe(2);
		expect(await page.locator("#login").isHidden()).toBe(true);
		// Signing out forgets it and shows nothing more.
		await page.getByRole("button", { name: "Sign out" }).click();
		expect(await page.locator("#login").isVisible()).toBe(true);
		expect(await page.getByRole("article").count()).toBe(0);
		expect(await page.locator("#batches").isHidden()).toBe(true);
		expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
		expect(errors).toEqual([]);
		await context.close();
	});
});

describe("the operator dashboard's batches", () => {
	it("lists a batch sent with the OpenAI SDK, and its lines as they are answered", async () => {
		const openai = openaiClient(gateway);
		const jsonl = [1, 2, 3]
			.map((n) =>
				JSON.stringify({
					custom_id: `line-${n}`,
					method: "POST",
					url: "/v1/chat/completions",
					body: {
						model: "gpt-4o-mini",
						messages: [{ role: "user", content: "Hi" }],
						max_tokens: 8,
					},
				}),
			)
			.join("\n");
		const file = await openai.files.create({
			file: await toFile(Buffer.from(jsonl), "dashboard.jsonl"),
			purpose: "batch",
		});
		const batch = await openai.batches.create({
			input_file_id: file.id,
			endpoint: "/v1/chat/completions",
			completion_window: "24h",
		});

		const context = await browser.newContext({ viewport: DESKTOP, colorScheme: "light" });
		const { page, errors } = await openPage(context);
		await signIn(page, DEV_ADMIN_TOKEN);
		const row = page.locator(`#batches-rows tr[data-batch='${batch.id}']`);
		await expect.poll(() => row.count(), SOON).toBe(1);
		await expect.poll(() => row.locator("td").nth(2).textContent(), SOON).toBe("completed");
		expect(await row.locator("td").nth(3).textContent()).toBe("3 / 3");
		expect(await row.locator("td").nth(0).textContent()).toBe("dev");
		await page.locator("#batches").scrollIntoViewIfNeeded();
		await page.screenshot({ path: join(SCREENSHOTS, "batches-desktop-light.png"), fullPage: true });
		expect(errors).toEqual([]);
		await context.close();
	});
});

describe("the operator dashboard when the provider pushes back", () => {
	let pushingBack: WranglerDev;
	beforeAll(async () => {
		// The dev setup with a mock provider that takes 2 requests a second (10 at once) where the
		// pool believes it may send 10 a second (100 at once). Its answers take 2 s, so the pool
		// learns nothing from them before the burst below meets the provider's limit (a 429 is at once).
		pushingBack = await startWranglerDev({
			config: devConfig,
			vars: { MOCK_RPM: 120, MOCK_BURST_SECONDS: 5, MOCK_LATENCY_MS: 2000 },
		});
	});
	afterAll(async () => {
		await pushingBack?.stop();
	});

	it("counts provider 429s and retries, and shows the limits it learned", async () => {
		const context = await browser.newContext({ viewport: DESKTOP, colorScheme: "dark" });
		const { page, errors } = await openPage(context);
		await signIn(page, DEV_ADMIN_TOKEN, "mouse", pushingBack.origin);
		await expect.poll(() => page.getByRole("article").count(), SOON).toBe(2);
		// 60 at once, before the provider's first answer: the pool sends them all, the provider
		// answers 429 to most, and the pool pauses, learns the advertised limit and retries them.
		const load = sendLoad(100, 600, 10_000, pushingBack.origin);
		try {
			const throttled = legendCount(page, "openai", "Provider 429s", "provider_429");
			await expect.poll(() => countIn(throttled), SOON).toBeGreaterThan(0);
			const retried = legendCount(page, "openai", "Retries", "retry");
			await expect.poll(() => countIn(retried), SOON).toBeGreaterThan(0);
			const requestsNote = card(page, "openai")
				.getByRole("meter", { name: "Requests bucket" })
				.locator("xpath=following-sibling::div[@class='note']");
			await expect.poll(() => requestsNote.textContent(), SOON).toMatch(/learned$/);
			await page.screenshot({
				path: join(SCREENSHOTS, "pushback-desktop-dark.png"),
				fullPage: true,
			});
		} finally {
			await load;
		}
		expect(errors).toEqual([]);
		await context.close();
	});
});
