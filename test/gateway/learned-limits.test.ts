import { afterEach, expect, it, vi } from "vitest";
import { poolStatus, postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

let upstream: ReturnType<typeof installMockUpstream> | undefined;
afterEach(() => upstream?.restore());

const send = (pool: string) => postToPool(pool);

const status = poolStatus;

it("a provider that allows less than the configuration lowers the pool's buckets and limit", async () => {
	// "learner" is configured for 6000 requests a minute; the provider really allows 60.
	upstream = installMockUpstream({ requestsPerMinute: 60 });
	expect((await status("learner")).requests.remaining).toBeGreaterThan(900);
	for (let i = 0; i < 5; i++) expect((await send("learner")).status).toBe(200);

	await vi.waitFor(
		async () => expect((await status("learner")).limitsInForce.requestsPerMinute).toBe(60),
		{
			interval: 20,
		},
	);
	const learned = await status("learner");
	// The mock had 55 of its 60 left: the pool holds no more than that now.
	expect(learned.requests.remaining).toBeLessThanOrEqual(56);
	expect(learned.limitsInForce.source).toMatch(/provider|advertis|header/i);
});

it("an auto pool starts conservative and adopts the provider's advertised limits", async () => {
	upstream = installMockUpstream({ requestsPerMinute: 900, tokensPerMinute: 90_000 });
	const before = await status("auto");
	expect(before.limitsInForce.requestsPerMinute).toBe(50);
	expect(before.limitsInForce.source).toMatch(/auto/);

	expect((await send("auto")).status).toBe(200);
	await vi.waitFor(
		async () => expect((await status("auto")).limitsInForce.requestsPerMinute).toBe(900),
		{
			interval: 20,
		},
	);
	expect((await status("auto")).limitsInForce.tokensPerMinute).toBe(90_000);
	expect((await status("auto")).requests.limitPerMinute).toBe(900);
});
