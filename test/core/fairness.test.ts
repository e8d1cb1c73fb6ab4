// Fair shares between tenants of a class, by weight, and tenants' own limits, on a fake clock:
// a heavy tenant gets no more than its share while others have work waiting, and a tenant at a
// limit of its own stands aside instead of blocking everyone behind it.
import { describe, expect, it } from "vitest";
import { Scheduler, type SchedulerOptions } from "../../src/core/scheduler.ts";
import { ask, options, waitAtMost } from "./build.ts";
import { type Arrival, drive, stream } from "./drive.ts";

const minute = 60_000;

/** 600 requests a minute, ten a second; bursts of ten. */
function pool(rest: Partial<Omit<SchedulerOptions, "limits">> = {}): Scheduler {
	return new Scheduler(
		options(
			{ requestsPerMinute: 600, burstRequests: 10 },
			{ maxWaitMsByPriority: waitAtMost(30_000), ...rest },
		),
	);
}

/**
 * Admissions per tenant, counted only while every tenant named had work waiting: the share
 * fairness promises is of the capacity they contend for.
 */
function sharesWhileAllWait(scheduler: Scheduler, tenants: string[], arrivals: Arrival[]) {
	const admitted = new Map(tenants.map((tenant) => [tenant, 0]));
	let all = 0;
	drive(scheduler, arrivals, {
		untilMs: 10 * minute,
		latencyMs: 2_000,
		answered: ({ ask: { tenant }, decision, answer }) => {
			if (answer?.kind !== "admitted") return undefined;
			all++;
			const status = scheduler.status(answer.atMs);
			const waiting = (name: string) =>
				(status.tenants[name]?.queued ?? 0) > 0 || (name === tenant && decision.kind === "queued");
			if (tenants.every(waiting)) admitted.set(tenant, (admitted.get(tenant) ?? 0) + 1);
			return undefined;
		},
	});
	const contended = [...admitted.values()].reduce((sum, count) => sum + count, 0);
	return { admitted, contendedShare: contended / all };
}

describe("fair shares between tenants of a class", () => {
	it("gives a light tenant at least 45% against one sending ten times as much", () => {
		// Light asks for 60% of the pool, heavy for 600%: both always have work waiting. Heavy's
		// callers would wait five minutes, light's only 30 s: in a first-come queue behind heavy's
		// backlog, light's would all give up.
		const arrivals = [
			...stream(0, 10 * minute, 1_000 / 6, (_, atMs) =>
				ask({ tenant: "light", deadlineMs: atMs + 30_000 }),
			),
			...stream(0, 10 * minute, 1_000 / 60, () => ask({ tenant: "heavy" })),
		];
		const scheduler = pool({ maxWaitMsByPriority: waitAtMost(5 * minute) });
		const { admitted, contendedShare } = sharesWhileAllWait(
			scheduler,
			["light", "heavy"],
			arrivals,
		);
		const light = admitted.get("light") ?? 0;
		const heavy = admitted.get("heavy") ?? 0;
		// Nearly all ten minutes at the pool's full rate were contended.
		expect(contendedShare).toBeGreaterThan(0.9);
		expect(light + heavy).toBeGreaterThan(0.9 * 6_000);
		expect(light / (light + heavy)).toBeGreaterThanOrEqual(0.45);
	});

	it("divides the pool by weight: 2 to 1", () => {
		const arrivals = [
			...stream(0, 10 * minute, 1_000 / 30, () => ask({ tenant: "gold" })),
			...stream(0, 10 * minute, 1_000 / 30, () => ask({ tenant: "bronze" })),
		];
		const scheduler = pool({ tenants: { gold: { weight: 2 }, bronze: { weight: 1 } } });
		const { admitted, contendedShare } = sharesWhileAllWait(
			scheduler,
			["gold", "bronze"],
			arrivals,
		);
		const gold = admitted.get("gold") ?? 0;
		const bronze = admitted.get("bronze") ?? 0;
		expect(contendedShare).toBeGreaterThan(0.9);
		expect(gold / (gold + bronze)).toBeCloseTo(2 / 3, 1);
		expect(gold / bronze).toBeGreaterThan(1.9);
		expect(gold / bronze).toBeLessThan(2.1);
	});

	it("shares by tokens, not requests, when tokens bind", () => {
		// 1000 tokens a second; big asks 200 tokens, small 20: each tenant should get 500 a second.
		const scheduler = new Scheduler(
			options(
				{
					requestsPerMinute: 60_000,
					burstRequests: 100,
					tokensPerMinute: 60_000,
					burstTokens: 1_000,
				},
				{ maxWaitMsByPriority: waitAtMost(30_000) },
			),
		);
		const arrivals = [
			...stream(0, 10 * minute, 100, () => ask({ tenant: "big", tokens: 200 })),
			...stream(0, 10 * minute, 10, () => ask({ tenant: "small", tokens: 20 })),
		];
		const { admitted } = sharesWhileAllWait(scheduler, ["big", "small"], arrivals);
		const bigTokens = 200 * (admitted.get("big") ?? 0);
		const smallTokens = 20 * (admitted.get("small") ?? 0);
		expect(bigTokens / (bigTokens + smallTokens)).toBeCloseTo(0.5, 1);
	});
});

describe("tenants' own limits", () => {
	it("hold a tenant to its requests per minute, while others use the rest of the pool", () => {
		const scheduler = pool({ tenants: { capped: { weight: 1, requestsPerMinute: 120 } } });
		// Both ask for 5 a second; the pool could serve 10 a second.
		const arrivals = [
			...stream(0, 10 * minute, 200, () => ask({ tenant: "capped" })),
			...stream(0, 10 * minute, 200, () => ask({ tenant: "free" })),
		];
		const stories = drive(scheduler, arrivals, { untilMs: 10 * minute, latencyMs: 500 });
		const admittedIn = (tenant: string, fromMs: number, toMs: number) =>
			[...stories.values()].filter(
				({ ask: { tenant: who }, answer }) =>
					who === tenant &&
					answer?.kind === "admitted" &&
					answer.atMs >= fromMs &&
					answer.atMs < toMs,
			).length;
		// Its bucket holds a minute's worth: 120 at first, then 120 a minute.
		expect(admittedIn("capped", 0, minute)).toBeLessThanOrEqual(240 + 1);
		for (let m = 2; m < 10; m++) {
			expect(
				Math.abs(admittedIn("capped", m * minute, (m + 1) * minute) - 120),
			).toBeLessThanOrEqual(2);
			// The free tenant gets everything it asks for, at once.
			expect(admittedIn("free", m * minute, (m + 1) * minute)).toBe(300);
		}
		const freeWaits = [...stories.values()]
			.filter((story) => story.ask.tenant === "free")
			.map((story) => (story.answer?.atMs ?? Number.POSITIVE_INFINITY) - story.arrivedMs);
		expect(Math.max(...freeWaits)).toBe(0);
		expect(scheduler.status(10 * minute).tenants.capped?.requests?.limitPerMinute).toBe(120);
	});

	it("hold a tenant to its tokens per minute and its leases in flight, independently", () => {
		const scheduler = pool({
			tenants: {
				wordy: { weight: 1, tokensPerMinute: 6_000 },
				slow: { weight: 1, maxConcurrent: 2 },
			},
		});
		const arrivals = [
			...stream(0, 5 * minute, 100, () => ask({ tenant: "wordy", tokens: 100 })),
			...stream(0, 5 * minute, 250, () => ask({ tenant: "slow" })),
			...stream(0, 5 * minute, 500, () => ask({ tenant: "other" })),
		];
		let maxSlowInFlight = 0;
		const stories = drive(scheduler, arrivals, {
			untilMs: 5 * minute,
			latencyMs: 1_000,
			observe: (nowMs) => {
				const inFlight = scheduler.status(nowMs).tenants.slow?.inFlight ?? 0;
				maxSlowInFlight = Math.max(maxSlowInFlight, inFlight);
			},
		});
		const admitted = (tenant: string) =>
			[...stories.values()].filter(
				(story) => story.ask.tenant === tenant && story.answer?.kind === "admitted",
			);
		// 6000 tokens a minute after a first minute's worth: 100-token asks, 60 a minute.
		expect(admitted("wordy").length).toBeGreaterThanOrEqual(60 * 6 - 2);
		expect(admitted("wordy").length).toBeLessThanOrEqual(60 * 6 + 1);
		// Two at a time for a second each: two a second.
		expect(maxSlowInFlight).toBe(2);
		expect(admitted("slow").length).toBeGreaterThan(2 * 300 - 10);
		// Neither slowed down the tenant without limits, once the wordy one's first minute's
		// worth (which the pool could not serve at once) was through.
		for (const story of admitted("other").filter(({ arrivedMs }) => arrivedMs >= 30_000)) {
			expect(story.answer?.atMs).toBe(story.arrivedMs);
		}
		expect(admitted("other").length).toBe(600);
	});

	it("skip a tenant at its limit instead of blocking the queue behind it", () => {
		const scheduler = pool({
			tenants: { capped: { weight: 1, requestsPerMinute: 1 } },
			maxWaitMsByPriority: waitAtMost(120_000),
		});
		scheduler.pauseUntil(1_000);
		// The capped tenant's critical ask is first in line, but its bucket has one request.
		scheduler.submit(ask({ ticketId: "c1", tenant: "capped", priority: "critical" }), 0);
		scheduler.submit(ask({ ticketId: "c2", tenant: "capped", priority: "critical" }), 0);
		scheduler.submit(ask({ ticketId: "low", tenant: "other", priority: "low" }), 0);
		const admitted = scheduler.tick(1_000).map((outcome) => outcome.ticketId);
		expect(admitted).toEqual(["c1", "low"]);
		expect(scheduler.status(1_000).tenants.capped).toMatchObject({ queued: 1, inFlight: 1 });
		// Its bucket has room again a minute after it was used: it wakes the pool for that.
		expect(scheduler.nextWakeMs(1_000)).toBe(61_000);
		expect(scheduler.tick(61_000).map((outcome) => outcome.ticketId)).toEqual(["c2"]);
	});

	it("reject at once an ask larger than the tenant's tokens per minute", () => {
		const scheduler = pool({ tenants: { small: { weight: 1, tokensPerMinute: 1_000 } } });
		const decision = scheduler.submit(ask({ tenant: "small", tokens: 1_001 }), 0);
		expect(decision).toMatchObject({ kind: "rejected", reason: "too_large", retryAfterMs: 0 });
		expect(decision.kind === "rejected" && decision.message).toMatch(/tenant small/);
	});
});
