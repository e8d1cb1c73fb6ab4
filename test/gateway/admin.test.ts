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

it("refuses admin data without a token; its answers are never cached, framed or sniffed", async () => {
	const response = await exports.default.fetch(new Request("http://tollbooth.test/admin/pools"));
	expect(response.status).toBe(401);
	expect(response.headers.get("cache-control")).toBe("no-store");
	expect(response.headers.get("x-frame-options")).toBe("DENY");
	expect(response.headers.get("x-content-type-options")).toBe("nosniff");
	expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
	expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
		/admin token/,
	);
});
