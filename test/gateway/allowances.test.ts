// Through the Worker: once the isolate holds an allowance from a pool, requests are admitted with
// no call to the Pool, the reservation shows in the pool's buckets, and what is left goes back when
// the window ends; a pool with allowances off asks the Pool for every request.
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { PoolClient } from "../../src/gateway/pool-client.ts";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => {
	upstream?.restore();
	vi.restoreAllMocks();
});

const status = (pool: string) => env.POOL.getByName(pool).status();

it("after the first request, requests are admitted from the isolate's allowance with no call to the Pool", async () => {
	upstream = installMockUpstream();
	const acquire = vi.spyOn(PoolClient.prototype, "acquire");
	expect((await postToPool("allowances")).status).toBe(200);
	expect(acquire).toHaveBeenCalledTimes(1);
	// The first request asked for an allowance in the background: it arrives within a batch.
	await vi.waitFor(
		async () => expect((await status("allowances")).allowances?.requests).toBeGreaterThan(0),
		{
			timeout: 1000,
			interval: 10,
		},
	);
	for (let i = 0; i < 2; i++) {
		const response = await postToPool("allowances");
		expect(response.status).toBe(200);
		expect(response.headers.get("x-tollbooth-queue-ms")).toBe("0");
		expect(response.headers.get("x-ratelimit-limit-requests")).toBe("6000");
	}
	expect(acquire).toHaveBeenCalledTimes(1);
	expect(upstream.sent).toHaveLength(3);
	// The grant is reserved in the pool's bucket: what it holds and what is left never exceed it.
	const view = await status("allowances");
	expect(view.allowances?.requests).toBeGreaterThan(0);
	expect(view.requests.remaining + (view.allowances?.requests ?? 0)).toBeLessThanOrEqual(
		view.requests.capacity,
	);
	// Idle, the isolate gives back what it did not use once the window is over.
	await vi.waitFor(
		async () =>
			expect((await status("allowances")).allowances).toEqual({ requests: 0, tokens: 0, slots: 0 }),
		{ timeout: 3000, interval: 50 },
	);
});

it("a provider 429 on a send from an allowance pauses everyone: that send and the next go through the Pool after the pause", async () => {
	const pool = "allowances-429";
	const retryAfterMs = 300;
	let rateLimit = false;
	const tooMany = {
		error: {
			message: "Rate limit reached",
			type: "requests",
			param: null,
			code: "rate_limit_exceeded",
		},
	};
	upstream = installMockUpstream({}, () => {
		if (!rateLimit) return undefined;
		rateLimit = false;
		return Response.json(tooMany, {
			status: 429,
			headers: { "retry-after-ms": String(retryAfterMs) },
		});
	});
	expect((await postToPool(pool)).status).toBe(200);
	await vi.waitFor(
		async () => expect((await status(pool)).allowances?.requests).toBeGreaterThan(0),
		{
			timeout: 1000,
			interval: 10,
		},
	);
	const acquire = vi.spyOn(PoolClient.prototype, "acquire");
	const attemptEnded = vi.spyOn(PoolClient.prototype, "attemptEnded");
	rateLimit = true;
	const first = await postToPool(pool);
	expect(first.status).toBe(200);
	expect(first.headers.get("x-tollbooth-retries")).toBe("1");
	// The 429'd send was from the allowance (no acquire); the Pool judged it and paused the pool.
	expect(attemptEnded).toHaveBeenCalledTimes(1);
	const sentAt = upstream.sent.map((sent) => sent.atMs);
	expect((sentAt[2] as number) - (sentAt[1] as number)).toBeGreaterThanOrEqual(retryAfterMs - 5);
	// This isolate stopped spending: the next request asks the Pool.
	expect((await postToPool(pool)).status).toBe(200);
	expect(acquire).toHaveBeenCalledTimes(1);
});

it("a pool with allowances off asks the Pool for every request, and holds none", async () => {
	upstream = installMockUpstream();
	const acquire = vi.spyOn(PoolClient.prototype, "acquire");
	for (let i = 0; i < 3; i++) expect((await postToPool("no-allowances")).status).toBe(200);
	expect(acquire).toHaveBeenCalledTimes(3);
	expect((await status("no-allowances")).allowances).toBeUndefined();
});
