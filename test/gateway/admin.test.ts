// Through the Worker: the admin API shows live pool state, and only to an admin token.
import { exports } from "cloudflare:workers";
import { afterEach, expect, it } from "vitest";
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
