// Behaviour of the Scheduler through its public API, on a fake clock passed as nowMs.
import { describe, expect, it } from "vitest";
import {
	type Decision,
	type Outcome,
	Scheduler,
	type SchedulerSnapshot,
} from "../../src/core/scheduler.ts";
import { type BucketState, bucketSpec, levelAt } from "../../src/core/token-bucket.ts";
import { ask, options, poolLimits, waitAtMost } from "./build.ts";

function admitted(decision: Decision): boolean {
	return decision.kind === "admitted";
}

function summary(outcomes: Outcome[]): string[] {
	return outcomes.map(({ ticketId, result }) =>
		result.kind === "admitted" ? `${ticketId}:admitted` : `${ticketId}:${result.reason}`,
	);
}

function roundTrip(snapshot: SchedulerSnapshot): SchedulerSnapshot {
	return JSON.parse(JSON.stringify(snapshot)) as SchedulerSnapshot;
}

describe("Scheduler.submit", () => {
	it("admits at once with a lease that expires after the lease TTL", () => {
		const scheduler = new Scheduler(options({}, { leaseTtlMs: 30_000 }));
		const decision = scheduler.submit(ask({ ticketId: "a", tenant: "t1", tokens: 42 }), 1_000);
		expect(decision).toEqual({
			kind: "admitted",
			lease: {
				ticketId: "a",
				tenant: "t1",
				model: "gpt-test",
				tokens: 42,
				attempt: 1,
				admittedMs: 1_000,
				expiresMs: 31_000,
			},
		});
		const status = scheduler.status(1_000);
		expect(status.requests.remaining).toBe(99);
		expect(status.tokens.remaining).toBe(10_000 - 42);
		expect(status.inFlight).toBe(1);
	});

	it("rejects an ask larger than the pool's token capacity, naming estimate and capacity", () => {
		const scheduler = new Scheduler(options());
		const decision = scheduler.submit(ask({ tokens: 10_001 }), 0);
		expect(decision).toMatchObject({ kind: "rejected", reason: "too_large", retryAfterMs: 0 });
		expect(decision.kind === "rejected" && decision.message).toMatch(
			/10,001 tokens.*10,000 tokens that this pool's limits\.burstTokens/,
		);
		expect(scheduler.status(0).tokens.remaining).toBe(10_000);
		expect(scheduler.status(0).requests.remaining).toBe(100);
	});

	it("rejects an ask larger than its model's token capacity", () => {
		const scheduler = new Scheduler(
			options({
				models: {
					small: {
						requestsPerMinute: 60,
						tokensPerMinute: 6_000,
						burstRequests: 5,
						burstTokens: 1_000,
					},
				},
			}),
		);
		const decision = scheduler.submit(ask({ model: "small", tokens: 1_001 }), 0);
		expect(decision).toMatchObject({ kind: "rejected", reason: "too_large" });
		expect(decision.kind === "rejected" && decision.message).toMatch(
			/1,000 tokens that limits\.models\["small"\]\.burstTokens/,
		);
		expect(admitted(scheduler.submit(ask({ model: "other", tokens: 1_001 }), 0))).toBe(true);
	});

	it("rejects with queue_full and the wait it would have had once the queue is at its bound", () => {
		const scheduler = new Scheduler(options({ burstRequests: 1 }, { maxQueueLength: 2 }));
		expect(admitted(scheduler.submit(ask(), 0))).toBe(true);
		expect(scheduler.submit(ask(), 0)).toEqual({ kind: "queued", position: 1, etaMs: 100 });
		expect(scheduler.submit(ask(), 0)).toEqual({ kind: "queued", position: 2, etaMs: 200 });
		expect(scheduler.submit(ask(), 0)).toMatchObject({
			kind: "rejected",
			reason: "queue_full",
			retryAfterMs: 300,
		});
		expect(scheduler.status(0).queued).toBe(2);
	});

	it("rejects at once when the estimated wait passes the deadline", () => {
		const scheduler = new Scheduler(options({ requestsPerMinute: 60, burstRequests: 1 }));
		expect(admitted(scheduler.submit(ask(), 0))).toBe(true);
		expect(scheduler.submit(ask({ deadlineMs: 999 }), 0)).toMatchObject({
			kind: "rejected",
			reason: "deadline",
			retryAfterMs: 1_000,
		});
		expect(scheduler.submit(ask({ deadlineMs: 0 }), 0)).toMatchObject({ reason: "deadline" });
		expect(scheduler.submit(ask({ deadlineMs: 1_000 }), 0)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 1_000,
		});
		// The next one waits behind it: two seconds. It is told to come back after the waiter and
		// the two callers already told to come back, so that they do not collide.
		expect(scheduler.submit(ask({ deadlineMs: 1_999 }), 0)).toMatchObject({
			reason: "deadline",
			position: 2,
			etaMs: 2_000,
			retryAfterMs: 4_000,
		});
	});

	it("refuses a ticket id that is already waiting or leased", () => {
		const scheduler = new Scheduler(options({ burstRequests: 1 }));
		scheduler.submit(ask({ ticketId: "dup" }), 0);
		expect(() => scheduler.submit(ask({ ticketId: "dup" }), 0)).toThrow(/dup/);
		expect(() => scheduler.submit(ask({ tokens: Number.NaN }), 0)).toThrow(RangeError);
	});
});

describe("concurrency", () => {
	it("caps leases in flight, and a release frees a slot for the next waiter", () => {
		const scheduler = new Scheduler(options({ maxConcurrent: 2 }));
		expect(admitted(scheduler.submit(ask({ ticketId: "a" }), 0))).toBe(true);
		expect(admitted(scheduler.submit(ask({ ticketId: "b" }), 0))).toBe(true);
		expect(scheduler.submit(ask({ ticketId: "c" }), 0)).toMatchObject({ kind: "queued" });
		expect(scheduler.tick(5)).toEqual([]);
		expect(scheduler.release("a", 10, 10)).toBe(true);
		expect(scheduler.nextWakeMs(10)).toBe(10);
		expect(summary(scheduler.tick(10))).toEqual(["c:admitted"]);
		expect(scheduler.status(10).inFlight).toBe(2);
		expect(scheduler.release("a", 10, 10)).toBe(false);
	});

	it("reclaims an expired lease in tick: the slot is freed, its tokens stay charged", () => {
		const scheduler = new Scheduler(
			options({ maxConcurrent: 1, tokensPerMinute: 6 }, { leaseTtlMs: 1_000 }),
		);
		expect(admitted(scheduler.submit(ask({ ticketId: "a", tokens: 100 }), 0))).toBe(true);
		expect(scheduler.submit(ask({ ticketId: "b", tokens: 10 }), 0)).toMatchObject({
			kind: "queued",
		});
		expect(scheduler.nextWakeMs(0)).toBe(1_000);
		expect(scheduler.tick(999)).toEqual([]);
		expect(summary(scheduler.tick(1_000))).toEqual(["b:admitted"]);
		expect(scheduler.release("a", 0, 1_000)).toBe(false);
		// 10000 - 100 - 10, plus 0.1 refilled in a second at 6 per minute.
		expect(scheduler.status(1_000).tokens.remaining).toBe(9_890);
		expect(scheduler.status(1_000).inFlight).toBe(1);
	});
});

describe("Scheduler.cancel", () => {
	it("removes a waiter, charges nothing, and lets the one behind it move up", () => {
		const scheduler = new Scheduler(
			options({ requestsPerMinute: 60, burstRequests: 1, tokensPerMinute: 60 }),
		);
		scheduler.submit(ask({ ticketId: "a", tokens: 50 }), 0);
		scheduler.submit(ask({ ticketId: "b", tokens: 500 }), 0);
		scheduler.submit(ask({ ticketId: "c", tokens: 5 }), 0);
		const before = scheduler.status(0);
		expect(scheduler.cancel("b")).toBe(true);
		expect(scheduler.cancel("b")).toBe(false);
		expect(scheduler.cancel("a")).toBe(false); // admitted, not waiting
		const after = scheduler.status(0);
		expect(after.tokens).toEqual(before.tokens);
		expect(after.requests).toEqual(before.requests);
		expect(after.queued).toBe(1);
		expect(summary(scheduler.tick(1_000))).toEqual(["c:admitted"]);
		// 10000 - 50 - 5, plus 1 refilled in a second at 60 per minute; b's 500 never charged.
		expect(scheduler.status(1_000).tokens.remaining).toBe(9_946);
	});
});

describe("deadlines in tick", () => {
	it("rejects a waiter whose deadline comes before it is admitted", () => {
		const scheduler = new Scheduler(options({ maxConcurrent: 1 }));
		scheduler.submit(ask({ ticketId: "a" }), 0);
		expect(scheduler.submit(ask({ ticketId: "b", deadlineMs: 300 }), 0)).toMatchObject({
			kind: "queued",
		});
		expect(scheduler.nextWakeMs(0)).toBe(300);
		expect(scheduler.tick(299)).toEqual([]);
		const outcomes = scheduler.tick(300);
		expect(summary(outcomes)).toEqual(["b:deadline"]);
		expect(outcomes[0]?.result).toMatchObject({ kind: "rejected", retryAfterMs: 1 });
		expect(scheduler.status(300).queued).toBe(0);
	});

	it("admits the waiter behind a rejected head in the same tick", () => {
		// The pool refills half a token per second, the slow model ten.
		const slow = { requestsPerMinute: 60, tokensPerMinute: 600, burstRequests: 1, burstTokens: 10 };
		const scheduler = new Scheduler(
			options({ tokensPerMinute: 30, burstTokens: 200, models: { slow } }),
		);
		scheduler.submit(ask({ ticketId: "s1", model: "slow", tokens: 10 }), 0);
		expect(
			scheduler.submit(ask({ ticketId: "s2", model: "slow", tokens: 10, deadlineMs: 5_000 }), 0),
		).toEqual({ kind: "queued", position: 1, etaMs: 1_000 });
		// s1 used 90 tokens more than its estimate: the slow model is in debt for nine seconds.
		scheduler.release("s1", 100, 0);
		// f fits the pool's 100 tokens now, but would leave s2 short of 10 when the model is ready.
		expect(scheduler.submit(ask({ ticketId: "f", model: "fast", tokens: 100 }), 0)).toMatchObject({
			kind: "queued",
			position: 2,
		});
		expect(scheduler.nextWakeMs(0)).toBe(5_000);
		expect(summary(scheduler.tick(5_000))).toEqual(["s2:deadline", "f:admitted"]);
	});
});

describe("retries", () => {
	it("go ahead of first attempts", () => {
		const scheduler = new Scheduler(options({ burstRequests: 1 }));
		scheduler.submit(ask({ ticketId: "a" }), 0);
		scheduler.submit(ask({ ticketId: "b" }), 0);
		scheduler.submit(ask({ ticketId: "c" }), 0);
		expect(scheduler.submit(ask({ ticketId: "r", retry: true }), 0)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 100,
		});
		const order: string[] = [];
		for (let nowMs = 100; nowMs <= 300; nowMs += 100) order.push(...summary(scheduler.tick(nowMs)));
		expect(order).toEqual(["r:admitted", "b:admitted", "c:admitted"]);
	});

	it("are admitted at once ahead of a first attempt that waits for tokens", () => {
		const scheduler = new Scheduler(options({ tokensPerMinute: 600, burstTokens: 1_000 }));
		scheduler.submit(ask({ ticketId: "a", tokens: 900 }), 0);
		// b needs 500 of the 100 left; c would take tokens b waits for, so it waits behind b.
		expect(scheduler.submit(ask({ ticketId: "b", tokens: 500 }), 0)).toMatchObject({
			kind: "queued",
		});
		expect(scheduler.submit(ask({ ticketId: "c", tokens: 50 }), 0)).toMatchObject({
			kind: "queued",
			position: 2,
		});
		expect(admitted(scheduler.submit(ask({ ticketId: "r", tokens: 50, retry: true }), 0))).toBe(
			true,
		);
	});
});

describe("Scheduler.pauseUntil", () => {
	it("holds admissions until the pause ends, and a shorter pause never shortens it", () => {
		const scheduler = new Scheduler(options());
		scheduler.pauseUntil(5_000);
		expect(scheduler.submit(ask({ ticketId: "a" }), 0)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 5_000,
		});
		scheduler.pauseUntil(2_000);
		expect(scheduler.status(0).pausedUntilMs).toBe(5_000);
		expect(scheduler.nextWakeMs(0)).toBe(5_000);
		expect(scheduler.tick(4_999)).toEqual([]);
		expect(summary(scheduler.tick(5_000))).toEqual(["a:admitted"]);
		scheduler.pauseUntil(8_000);
		expect(scheduler.submit(ask(), 7_000)).toMatchObject({ kind: "queued", etaMs: 1_000 });
	});
});

describe("per-model limits", () => {
	const small = {
		requestsPerMinute: 60,
		tokensPerMinute: 60_000,
		burstRequests: 2,
		burstTokens: 10_000,
	};

	it("bind a model while the pool has room, and leave other models alone", () => {
		const scheduler = new Scheduler(options({ models: { small } }));
		expect(admitted(scheduler.submit(ask({ model: "small" }), 0))).toBe(true);
		expect(admitted(scheduler.submit(ask({ model: "small" }), 0))).toBe(true);
		expect(admitted(scheduler.submit(ask({ model: "other" }), 0))).toBe(true);
		expect(scheduler.submit(ask({ model: "small" }), 0)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 1_000,
		});
		const status = scheduler.status(0);
		expect(status.requests.remaining).toBe(97);
		expect(status.models.small?.requests).toEqual({
			limitPerMinute: 60,
			capacity: 2,
			remaining: 0,
			resetMs: 2_000,
		});
	});

	it("do not lift the pool's own limit", () => {
		const roomy = { ...small, burstRequests: 50 };
		const scheduler = new Scheduler(options({ burstRequests: 3, models: { roomy } }));
		for (let i = 0; i < 3; i++)
			expect(admitted(scheduler.submit(ask({ model: "roomy" }), 0))).toBe(true);
		expect(scheduler.submit(ask({ model: "roomy" }), 0)).toMatchObject({ kind: "queued" });
	});
});

describe("reserve then reconcile", () => {
	const limits = { tokensPerMinute: 6_000, burstTokens: 2_000 }; // 0.1 token per ms
	const tokenSpec = bucketSpec(limits.tokensPerMinute, limits.burstTokens);

	// Two pools see the same traffic; one reserves an estimate and reconciles at release, the
	// other is charged the true amount at admission. Their token buckets must agree afterwards.
	function tokensAfter(estimate: number, actual: number, nowMs: number) {
		const reserving = new Scheduler(options(limits));
		const exact = new Scheduler(options(limits));
		for (const scheduler of [reserving, exact])
			scheduler.submit(ask({ ticketId: "warm", tokens: 600 }), 0);
		expect(admitted(reserving.submit(ask({ ticketId: "x", tokens: estimate }), 1_000))).toBe(true);
		expect(admitted(exact.submit(ask({ ticketId: "x", tokens: actual }), 1_000))).toBe(true);
		expect(reserving.release("x", actual, 2_500)).toBe(true);
		expect(exact.release("x", undefined, 2_500)).toBe(true);
		const level = (scheduler: Scheduler) =>
			levelAt(tokenSpec, scheduler.snapshot().pool.tokens as BucketState, nowMs);
		expect(reserving.status(nowMs).tokens).toEqual(exact.status(nowMs).tokens);
		expect(level(reserving)).toBeCloseTo(level(exact), 9);
		return level(exact);
	}

	it("refunds what was reserved but not used", () => {
		// 2000 - 600, + 100 refilled by 1000 ms, - 200 used, + 150 refilled by 2500 ms.
		expect(tokensAfter(500, 200, 2_500)).toBeCloseTo(1_450, 9);
		expect(tokensAfter(500, 200, 4_000)).toBeCloseTo(1_600, 9);
	});

	it("charges the extra when usage exceeds the estimate", () => {
		// 2000 - 600, + 100 refilled by 1000 ms, - 900 used, + 150 refilled by 2500 ms.
		expect(tokensAfter(200, 900, 2_500)).toBeCloseTo(750, 9);
		expect(tokensAfter(200, 900, 4_000)).toBeCloseTo(900, 9);
	});

	it("keeps the reservation when the actual usage is unknown", () => {
		const scheduler = new Scheduler(options());
		scheduler.submit(ask({ ticketId: "x", tokens: 700 }), 0);
		scheduler.release("x", undefined, 0);
		expect(scheduler.status(0).tokens.remaining).toBe(9_300);
	});

	it("delays the next admission until a debt is repaid", () => {
		const scheduler = new Scheduler(options({ tokensPerMinute: 60_000, burstTokens: 1_000 }));
		scheduler.submit(ask({ ticketId: "x", tokens: 1_000 }), 0);
		scheduler.release("x", 1_500, 0);
		expect(scheduler.submit(ask({ ticketId: "y", tokens: 100 }), 0)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 600,
		});
		expect(scheduler.nextWakeMs(0)).toBe(600);
		expect(summary(scheduler.tick(600))).toEqual(["y:admitted"]);
	});
});

describe("snapshot and restore", () => {
	it("keeps an empty bucket empty across a JSON round trip, refilling only by elapsed time", () => {
		const limits = { requestsPerMinute: 60, burstRequests: 2, tokensPerMinute: 600 };
		const scheduler = new Scheduler(options(limits));
		scheduler.submit(ask({ ticketId: "a", tokens: 300 }), 0);
		scheduler.submit(ask({ ticketId: "b" }), 0);
		const restored = new Scheduler(options(limits), roundTrip(scheduler.snapshot()));
		const status = restored.status(500);
		expect(status.requests).toMatchObject({ remaining: 0, resetMs: 1_500 });
		expect(status.inFlight).toBe(2);
		expect(restored.submit(ask({ ticketId: "c" }), 500)).toMatchObject({ kind: "queued" });
		expect(restored.nextWakeMs(500)).toBe(1_000);
		expect(summary(restored.tick(1_000))).toEqual(["c:admitted"]);
		// Restored leases still reconcile: a used 100 of its 300.
		const before = restored.status(1_000).tokens.remaining;
		expect(restored.release("a", 100, 1_000)).toBe(true);
		expect(restored.status(1_000).tokens.remaining).toBe(before + 200);
	});

	it("keeps the pause and the lease expiries", () => {
		const scheduler = new Scheduler(options({}, { leaseTtlMs: 1_000 }));
		scheduler.submit(ask({ ticketId: "a" }), 0);
		scheduler.pauseUntil(9_000);
		const restored = new Scheduler(
			options({}, { leaseTtlMs: 1_000 }),
			roundTrip(scheduler.snapshot()),
		);
		expect(restored.status(0).pausedUntilMs).toBe(9_000);
		expect(restored.nextWakeMs(0)).toBe(1_000);
		restored.tick(1_000);
		expect(restored.status(1_000).inFlight).toBe(0);
		expect(restored.release("a", 5, 1_000)).toBe(false);
	});

	it("clamps levels to capacities that shrank, and starts new models full", () => {
		const scheduler = new Scheduler(options({ burstRequests: 100 }));
		for (let i = 0; i < 70; i++) scheduler.submit(ask(), 0);
		const snapshot = roundTrip(scheduler.snapshot());
		const small = {
			requestsPerMinute: 60,
			tokensPerMinute: 600,
			burstRequests: 4,
			burstTokens: 40,
		};
		const shrunk = new Scheduler(options({ burstRequests: 20, models: { small } }), snapshot);
		expect(shrunk.status(0).requests.remaining).toBe(20);
		expect(shrunk.status(0).models.small?.requests.remaining).toBe(4);
		const unchanged = new Scheduler(options({ burstRequests: 100 }), snapshot);
		expect(unchanged.status(0).requests.remaining).toBe(30);
	});
});

describe("Scheduler.nextWakeMs", () => {
	it("is undefined when nothing waits and no lease is held", () => {
		const scheduler = new Scheduler(options());
		expect(scheduler.nextWakeMs(0)).toBeUndefined();
		scheduler.pauseUntil(1_000);
		expect(scheduler.nextWakeMs(0)).toBeUndefined();
	});

	it("ticking only at nextWakeMs admits each waiter the moment its request refills", () => {
		const startMs = 1_763_000_000_000; // epoch-sized times, as Date.now() gives
		const scheduler = new Scheduler(
			options(
				{ requestsPerMinute: 7, burstRequests: 2 },
				{ leaseTtlMs: 10, maxWaitMsByPriority: waitAtMost(600_000) },
			),
		);
		scheduler.submit(ask(), startMs);
		scheduler.submit(ask(), startMs);
		for (let i = 0; i < 30; i++) scheduler.submit(ask({ ticketId: `w${i}` }), startMs);
		const admittedAtMs: number[] = [];
		for (let nowMs = scheduler.nextWakeMs(startMs); nowMs !== undefined; ) {
			const outcomes = scheduler.tick(nowMs);
			for (const { result } of outcomes) {
				if (result.kind === "admitted") admittedAtMs.push(result.lease.admittedMs - startMs);
			}
			nowMs = scheduler.nextWakeMs(nowMs);
		}
		// Request k refills at k * 60000 / 7 ms; whole milliseconds, never later than the next one.
		expect(admittedAtMs).toEqual(
			Array.from({ length: 30 }, (_, i) => Math.ceil(((i + 1) * 60_000) / 7)),
		);
	});

	it("never wakes a tick that changes nothing while waiters wait", () => {
		const scheduler = new Scheduler(
			options({ requestsPerMinute: 600, tokensPerMinute: 7_777, burstTokens: 1_000 }),
		);
		let ticketCount = 0;
		for (; ticketCount < 50; ticketCount++) {
			scheduler.submit(ask({ tokens: 37 + ((ticketCount * 97) % 300) }), 0);
		}
		let wakes = 0;
		let changes = 0;
		for (
			let nowMs = scheduler.nextWakeMs(0);
			nowMs !== undefined;
			nowMs = scheduler.nextWakeMs(nowMs)
		) {
			wakes++;
			const inFlightBefore = scheduler.status(nowMs).inFlight;
			const outcomes = scheduler.tick(nowMs);
			if (outcomes.length > 0 || scheduler.status(nowMs).inFlight !== inFlightBefore) changes++;
		}
		expect(scheduler.status(0).queued).toBe(0);
		expect(changes).toBe(wakes);
	});
});

describe("Scheduler.lowerTo", () => {
	it("caps the pool's levels at the provider's reported remaining, and never raises them", () => {
		const scheduler = new Scheduler(options());
		scheduler.submit(ask({ tokens: 1_000 }), 0);
		scheduler.lowerTo({ requests: 10, tokens: 20_000 }, 0);
		expect(scheduler.status(0).requests.remaining).toBe(10);
		expect(scheduler.status(0).tokens.remaining).toBe(9_000);
		scheduler.lowerTo({ tokens: 500 }, 0);
		expect(scheduler.status(0).tokens.remaining).toBe(500);
		expect(scheduler.status(0).requests.remaining).toBe(10);
		// It refills from there: 100 tokens and one request a second.
		expect(scheduler.status(1_000)).toMatchObject({
			requests: { remaining: 20 },
			tokens: { remaining: 1_500 },
		});
		expect(scheduler.submit(ask({ tokens: 2_000 }), 1_000)).toMatchObject({
			kind: "queued",
			etaMs: 500,
		});
	});
});

describe("Scheduler.setLimits", () => {
	it("changes limits live: levels carry over clamped, new models start full", () => {
		const scheduler = new Scheduler(options({ burstRequests: 100 }));
		for (let i = 0; i < 40; i++) scheduler.submit(ask(), 0);
		const small = {
			requestsPerMinute: 60,
			tokensPerMinute: 600,
			burstRequests: 4,
			burstTokens: 40,
		};
		scheduler.setLimits(
			poolLimits({ burstRequests: 50, requestsPerMinute: 60, models: { small } }),
			0,
		);
		// 60 left of 100, clamped to 50; refilling at the new rate of one a second.
		expect(scheduler.status(0).requests).toMatchObject({ remaining: 50, capacity: 50 });
		expect(scheduler.status(0).models.small?.requests.remaining).toBe(4);
		scheduler.submit(ask(), 0);
		expect(scheduler.status(1_000).requests).toMatchObject({ remaining: 50, limitPerMinute: 60 });
		scheduler.setLimits(poolLimits({ burstRequests: 100 }), 1_000);
		expect(scheduler.status(1_000).requests.remaining).toBe(50);
		expect(scheduler.status(1_000).models).toEqual({});
	});

	it("rejects as too_large the waiters that no longer fit, with the next tick", () => {
		const scheduler = new Scheduler(options({ burstTokens: 10_000 }));
		scheduler.submit(ask({ ticketId: "drain", tokens: 10_000 }), 0);
		scheduler.submit(ask({ ticketId: "big", tokens: 6_000 }), 0);
		scheduler.submit(ask({ ticketId: "fits", tokens: 100 }), 0);
		scheduler.setLimits(poolLimits({ burstTokens: 5_000 }), 0);
		expect(scheduler.nextWakeMs(0)).toBe(0);
		expect(summary(scheduler.tick(0))).toEqual(["big:too_large"]);
		expect(scheduler.status(0).queued).toBe(1);
	});

	it("changes the concurrency limit", () => {
		const scheduler = new Scheduler(options({ maxConcurrent: 1 }));
		scheduler.submit(ask({ ticketId: "a" }), 0);
		scheduler.submit(ask({ ticketId: "b" }), 0);
		scheduler.setLimits(poolLimits({ maxConcurrent: 2 }), 0);
		expect(summary(scheduler.tick(0))).toEqual(["b:admitted"]);
		expect(scheduler.status(0).maxConcurrent).toBe(2);
	});
});

describe("tenants' buckets across a restart", () => {
	it("round-trip through the snapshot: no refill for free, leases still counted in flight", () => {
		const tenants = {
			capped: { weight: 1, requestsPerMinute: 6, tokensPerMinute: 600, maxConcurrent: 3 },
		};
		const scheduler = new Scheduler(options({}, { tenants }));
		for (let i = 0; i < 3; i++) scheduler.submit(ask({ tenant: "capped", tokens: 100 }), 0);
		const restored = new Scheduler(options({}, { tenants }), roundTrip(scheduler.snapshot()));
		expect(restored.status(0).tenants.capped).toMatchObject({
			inFlight: 3,
			requests: { remaining: 3 },
			tokens: { remaining: 300 },
		});
		// Held to its concurrency, then to its requests, not to a fresh bucket.
		expect(restored.submit(ask({ tenant: "capped", tokens: 100 }), 0)).toMatchObject({
			kind: "queued",
		});
		expect(roundTrip(restored.snapshot()).tenants).toEqual(roundTrip(scheduler.snapshot()).tenants);
	});

	it("restores a snapshot from before tenants had buckets", () => {
		const tenants = { capped: { weight: 1, requestsPerMinute: 6 } };
		const old = roundTrip(new Scheduler(options()).snapshot());
		delete old.tenants;
		const restored = new Scheduler(options({}, { tenants }), old);
		expect(restored.status(0).tenants.capped?.requests?.remaining).toBe(6);
	});
});
