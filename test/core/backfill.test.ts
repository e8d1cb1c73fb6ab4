// Backfilling on a fake clock: the head of the queue keeps a reservation for what it needs, and
// smaller requests go around it only when that does not make its earliest start any later.
import { describe, expect, it } from "vitest";
import { Scheduler } from "../../src/core/scheduler.ts";
import { type BucketState, bucketSpec, msUntilLevel } from "../../src/core/token-bucket.ts";
import { ask, options, waitAtMost } from "./build.ts";
import { drive, stream } from "./drive.ts";

// The pool refills 1000 tokens a second; the big model 100, from 5000 at most.
const big = {
	requestsPerMinute: 600,
	tokensPerMinute: 6_000,
	burstRequests: 10,
	burstTokens: 5_000,
};
const limits = {
	requestsPerMinute: 60_000,
	burstRequests: 1_000,
	tokensPerMinute: 60_000,
	burstTokens: 10_000,
	models: { big },
};

function scheduler(): Scheduler {
	return new Scheduler(options(limits, { maxWaitMsByPriority: waitAtMost(600_000) }));
}

describe("backfilling", () => {
	it("lets small requests use the pool while a big head waits for its model, never delaying it", () => {
		// big1 empties the big model's bucket; big2 must wait 50 s for it to refill, while small
		// requests of another model arrive at twice what the pool refills.
		const arrivals = [
			{ atMs: 0, ask: ask({ ticketId: "big1", model: "big", tokens: 5_000 }) },
			{ atMs: 1, ask: ask({ ticketId: "big2", model: "big", tokens: 5_000, priority: "high" }) },
			...stream(2, 120_000, 50, () => ask({ tenant: "other", model: "small", tokens: 100 })),
		];
		const stories = drive(scheduler(), arrivals, { untilMs: 120_000, latencyMs: 1_000 });
		// Without anything else, big2 starts when the big model has 5000 tokens again.
		const modelAfterBig1: BucketState = { level: 0, updatedMs: 0 };
		const aloneMs =
			1 +
			Math.ceil(
				msUntilLevel(bucketSpec(big.tokensPerMinute, big.burstTokens), modelAfterBig1, 5_000, 1),
			);
		expect(aloneMs).toBe(50_000);
		expect(stories.get("big2")?.answer).toMatchObject({ kind: "admitted", atMs: aloneMs });
		// Meanwhile the small ones had the pool's refill beyond big2's 5000: about 50,000 tokens.
		const smallBefore = [...stories.values()].filter(
			(story) =>
				story.ask.model === "small" && (story.answer?.atMs ?? Number.POSITIVE_INFINITY) < aloneMs,
		);
		expect(smallBefore.length * 100).toBeGreaterThan(45_000);
		expect(smallBefore.length * 100).toBeLessThanOrEqual(50_000 + 5_000);
	});

	it("holds back everything sharing the bucket a big head waits for", () => {
		// One bucket binds: any request taking tokens before the head would delay it.
		const sched = scheduler();
		sched.submit(ask({ ticketId: "drain", tokens: 10_000 }), 0);
		expect(sched.submit(ask({ ticketId: "head", tokens: 8_000 }), 0)).toMatchObject({
			kind: "queued",
			etaMs: 8_000,
		});
		const later = [1_000, 2_000, 4_000].map((atMs) => {
			const small = ask({ tenant: "other", tokens: 10, priority: "low" });
			expect(sched.submit(small, atMs).kind).toBe("queued");
			return small.ticketId;
		});
		expect(sched.nextWakeMs(4_000)).toBe(8_000);
		expect(sched.tick(8_000).map(({ ticketId }) => ticketId)).toEqual(["head"]);
		expect(sched.tick(8_030).map(({ ticketId }) => ticketId)).toEqual(later);
	});

	it("does not let a request of the head's own tenant use up the tenant's limit the head needs", () => {
		const sched = new Scheduler(
			options(limits, {
				maxWaitMsByPriority: waitAtMost(600_000),
				tenants: { t: { weight: 1, tokensPerMinute: 12_000 } },
			}),
		);
		sched.submit(ask({ ticketId: "big1", tenant: "t", model: "big", tokens: 5_000 }), 0);
		sched.submit(ask({ ticketId: "big2", tenant: "t", model: "big", tokens: 5_000 }), 0);
		// The tenant has 7000 tokens left and refills 200 a second: by 50 s, 17,000. A small ask
		// of 2000 leaves enough; one of 8000 would not.
		expect(sched.submit(ask({ tenant: "t", model: "small", tokens: 2_000 }), 0).kind).toBe(
			"admitted",
		);
		expect(sched.submit(ask({ tenant: "t", model: "small", tokens: 5_000 }), 0).kind).toBe(
			"queued",
		);
	});
});
