// Through the Worker: the admin API shows live pool state and its event series, only to an admin
// token; the dashboard page is served under strict security headers.
import { exports } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
import { CHAT, postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";
import { TEST_KEYS } from "../support/test-config.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const get = (path: string, key: string) =>
	exports.default.fetch(
		new Request(`http://tollbooth.test${path}`, { headers: { authorization: `Bearer ${key}` } }),
	);

it("shows a pool's buckets, in-flight and queue to an admin token", async () => {
	upstream = installMockUpstream();
	await (
		await exports.default.fetch(
			new Request("http://tollbooth.test/tight/v1/embeddings", {
				method: "POST",
				headers: { authorization: `Bearer ${TEST_KEYS.teamA}`, "content-type": "application/json" },
				body: JSON.stringify({ model: "text-embedding-3-small", input: "hello" }),
			}),
		)
	).text();
	// "tight" refills one request a second: the one just sent still shows.
	const response = await get("/admin/pools/tight", TEST_KEYS.admin);
	expect(response.status).toBe(200);
	const body = (await response.json()) as {
		name: string;
		status: { requests: { remaining: number; capacity: number }; inFlight: number; queued: number };
	};
	expect(body.name).toBe("tight");
	expect(body.status.requests.remaining).toBeLessThan(body.status.requests.capacity);
	expect(body.status.queued).toBe(0);

	const all = (await (await get("/admin/pools", TEST_KEYS.admin)).json()) as {
		pools: { name: string }[];
	};
	expect(all.pools.map((pool) => pool.name)).toContain("tight");
});

it("refuses a tenant's key and an unknown pool", async () => {
	expect((await get("/admin/pools/openai", TEST_KEYS.teamA)).status).toBe(401);
	expect((await get("/admin/pools/nope", TEST_KEYS.admin)).status).toBe(404);
});

it("counts a pool's admissions and refusals by reason per second at /admin/pools/:name/series", async () => {
	upstream = installMockUpstream();
	await (await postToPool("tight")).text();
	// More tokens than the pool's bucket holds: refused at once as too large.
	const refused = await postToPool("tight", { body: { ...CHAT, max_tokens: 50_000 } });
	expect(refused.status).toBe(400);
	await refused.text();

	const response = await get("/admin/pools/tight/series", TEST_KEYS.admin);
	expect(response.status).toBe(200);
	expect(response.headers.get("cache-control")).toBe("no-store");
	const body = (await response.json()) as {
		name: string;
		bucketMs: number;
		endMs: number;
		series: Record<string, number[]>;
	};
	expect(body.name).toBe("tight");
	expect(body.bucketMs).toBe(1_000);
	expect(body.endMs).toBeGreaterThan(Date.now() - 1_000);
	const total = (kind: string) => (body.series[kind] ?? []).reduce((sum, count) => sum + count, 0);
	expect(total("admitted")).toBeGreaterThanOrEqual(1);
	expect(total("refused:too_large")).toBe(1);
	expect(body.series.admitted).toHaveLength(300);

	expect((await get("/admin/pools/tight/series", TEST_KEYS.teamA)).status).toBe(401);
	expect((await get("/admin/pools/nope/series", TEST_KEYS.admin)).status).toBe(404);
});

it("serves the dashboard without a token, under a CSP that allows only its own files", async () => {
	const page = await exports.default.fetch(new Request("http://tollbooth.test/admin"));
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

	const script = await exports.default.fetch(new Request("http://tollbooth.test/admin/app.js"));
	expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
	expect(await script.text()).toContain("/admin/pools");
	const styles = await exports.default.fetch(new Request("http://tollbooth.test/admin/app.css"));
	expect(styles.headers.get("content-type")).toMatch(/^text\/css/);
	expect(await styles.text()).toContain("prefers-color-scheme: dark");
});

it("refuses admin data without a token, with the same headers: never cached, never framed", async () => {
	const response = await exports.default.fetch(new Request("http://tollbooth.test/admin/pools"));
	expect(response.status).toBe(401);
	expect(response.headers.get("cache-control")).toBe("no-store");
	expect(response.headers.get("x-frame-options")).toBe("DENY");
	expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
		/admin token/,
	);
});
