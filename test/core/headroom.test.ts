// Headroom for higher classes on a fake clock: a minute at three times a pool's limit, 20% high
// and 80% low, open loop. High, at 60% of the limit, must go at once while low soaks up the rest;
// the pool must still admit its whole limit; low callers that cannot make their deadline must be
// told on arrival, not when it passes.
import { describe, expect, it } from "vitest";
import { Headroom } from "../../src/core/headroom.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { seededRandom } from "../support/seeded-random.ts";
import { ask, options } from "./build.ts";
import { type Arrival, drive, type Story } from "./drive.ts";

const limit = {
	requestsPerMinute: 600,
	burstRequests: 100,
	tokensPerMinute: 1e9,
	burstTokens: 1e8,
};
const perSecond = 30; // 3 × 600 a minute
const durationMs = 60_000;
const latencyMs = 150;
const maxWaitMs = { critical: 10_000, high: 10_000, normal: 30_000, low: 30_000 };

/** Poisson arrivals at perSecond, each high with probability 0.2. */
function arrivals(seed: number): Arrival[] {
	const random = seededRandom(seed);
	const list: Arrival[] = [];
	for (let atMs = 0, i = 0; atMs < durationMs; i++) {
		atMs += Math.ceil((-Math.log(1 - random()) * 1000) / perSecond);
		const priority = random() < 0.2 ? "high" : "low";
		list.push({
			atMs,
			ask: ask({ ticketId: `a${seed}-${i}`, priority, tokens: 20, deadlineMs: atMs + 1e9 }),
		});
	}
	return list;
}

function overload(headroom: { floor: number; horizonMs: number }, seed: number) {
	const scheduler = new Scheduler(
		options(limit, { headroom, maxWaitMsByPriority: maxWaitMs, agingBoundMs: 90_000 }),
	);
	const stories = [...drive(scheduler, arrivals(seed), { untilMs: 200_000, latencyMs }).values()];
	const of = (priority: string) => stories.filter((story) => story.ask.priority === priority);
	const waitMs = (story: Story) => (story.answer?.atMs ?? Number.NaN) - story.arrivedMs;
	const high = of("high").map(waitMs);
	const admittedAt = stories
		.filter((story) => story.answer?.kind === "admitted")
		.map((story) => story.answer?.atMs ?? 0);
	// The bucket's burst is spent within ~5 s: from 10 s on, the pool runs at its limit.
	const saturated = admittedAt.filter((atMs) => atMs >= 10_000 && atMs < durationMs).length;
	const refused = stories.filter((story) => story.answer?.kind === "rejected");
	return {
		highAtOnce: high.filter((ms) => ms === 0).length / high.length,
		highP95: percentile(high, 0.95),
		goodput: saturated / ((limit.requestsPerMinute * (durationMs - 10_000)) / 60_000),
		refusedAtOnce: refused.filter((story) => waitMs(story) === 0).length / refused.length,
		refused: refused.length,
	};
}

function percentile(values: number[], p: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

describe("headroom for higher classes", () => {
	it.each([1, 2, 3])(
		"admits high at once and the pool at its limit at 3× overload (seed %i)",
		(seed) => {
			const withHeadroom = overload({ floor: 0, horizonMs: 1_000 }, seed);
			expect(withHeadroom.highAtOnce).toBeGreaterThanOrEqual(0.99);
			expect(withHeadroom.highP95).toBe(0);
			expect(withHeadroom.goodput).toBeGreaterThanOrEqual(0.99);
			// Low callers that will not make it are told on arrival, with the high arrivals to come counted.
			expect(withHeadroom.refused).toBeGreaterThan(800);
			expect(withHeadroom.refusedAtOnce).toBeGreaterThanOrEqual(0.95);

			// Without it, low takes every request the moment it refills and high waits for the next.
			const without = overload({ floor: 0, horizonMs: 0 }, seed);
			expect(without.highAtOnce).toBeLessThan(0.5);
			expect(without.highP95).toBeGreaterThan(50);
			expect(without.refusedAtOnce).toBeLessThan(0.8);
		},
	);

	it("sizes the reserve from the recent rate of the classes above, within floor and half", () => {
		const headroom = new Headroom({ floor: 0.05, horizonMs: 1_000 });
		const capacity = { requests: 100, tokens: 10_000, slots: 20 };
		// Nothing above yet: the floor.
		expect(headroom.reserve(3, capacity, 0)).toEqual({ requests: 5, tokens: 500, slots: 1 });
		// High at 6 a second for a minute (steady state of the 10 s average), 50 tokens each.
		for (let atMs = 0; atMs < 60_000; atMs += 1000 / 6) headroom.arrived(1, 50, atMs);
		headroom.held(500);
		const low = headroom.reserve(3, capacity, 60_000);
		// n ≈ 6 in the next second: 6 + 2√6 ≈ 11 requests (of 50 tokens); 3 in a 500 ms hold, 3 + 2√3 → 7 slots.
		expect(low.requests).toBeGreaterThanOrEqual(11);
		expect(low.requests).toBeLessThanOrEqual(12);
		expect(low.tokens).toBeCloseTo(50 * low.requests, 6);
		expect(low.slots).toBe(7);
		// The classes above high sent nothing: high keeps the floor only; critical never gives any.
		expect(headroom.reserve(1, capacity, 60_000)).toEqual({ requests: 5, tokens: 500, slots: 1 });
		expect(headroom.reserve(0, capacity, 60_000)).toEqual({ requests: 0, tokens: 0, slots: 0 });
		// A flood above takes at most half of any capacity.
		for (let i = 0; i < 10_000; i++) headroom.arrived(0, 50, 60_000);
		expect(headroom.reserve(3, capacity, 60_000)).toEqual({
			requests: 50,
			tokens: 5_000,
			slots: 10,
		});
		// And it fades as the classes above go quiet.
		const later = headroom.reserve(3, capacity, 60_000 + 120_000);
		expect(later.requests).toBeLessThan(10);
	});
});
