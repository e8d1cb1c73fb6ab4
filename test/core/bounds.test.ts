// The queue's bounds on a fake clock: its length per pool and per tenant, shedding the lowest and
// newest first, the longest wait per class, deadlines told at once, and the counts status keeps.
import { describe, expect, it } from "vitest";
import { PRIORITIES } from "../../src/core/priority.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { seededRandom as random } from "../support/seeded-random.ts";
import { ask, options, waitAtMost } from "./build.ts";
import { type Arrival, drive } from "./drive.ts";

/** One request a second, none in the bucket: everything submitted at 0 waits. */
function oneASecond(rest: Parameters<typeof options>[1] = {}): Scheduler {
	const scheduler = new Scheduler(
		options(
			{ requestsPerMinute: 60, burstRequests: 1 },
			{ maxWaitMsByPriority: waitAtMost(3_600_000), ...rest },
		),
	);
	scheduler.submit(ask({ ticketId: "first" }), 0);
	return scheduler;
}

describe("queue length", () => {
	it("never exceeds its caps, per pool and per tenant, in an hour of random traffic", () => {
		const maxQueueLength = 300;
		const maxQueuePerTenant = 120;
		const scheduler = new Scheduler(
			options(
				{ requestsPerMinute: 600, burstRequests: 20, tokensPerMinute: 60_000, burstTokens: 5_000 },
				{
					maxQueueLength,
					maxQueuePerTenant,
					maxWaitMsByPriority: { critical: 20_000, high: 40_000, normal: 60_000, low: 120_000 },
					agingBoundMs: 30_000,
					tenants: { gold: { weight: 3 }, capped: { weight: 1, requestsPerMinute: 60 } },
				},
			),
		);
		const next = random(7);
		const tenants = ["gold", "silver", "bronze", "capped", "noisy"];
		const arrivals: Arrival[] = [];
		// Two minutes at three times the pool's rate, then a quiet minute, over and over.
		const gapMs = (atMs: number) => (Math.floor(atMs / 60_000) % 3 === 2 ? 2_000 : 66) * next();
		for (let atMs = 0; atMs < 3_600_000; atMs += gapMs(atMs)) {
			arrivals.push({
				atMs: Math.floor(atMs),
				ask: ask({
					tenant: next() < 0.4 ? "noisy" : (tenants[Math.floor(next() * tenants.length)] as string),
					priority: PRIORITIES[Math.floor(next() * 4)],
					tokens: Math.floor(10 + 300 * next() ** 3),
					deadlineMs: Math.floor(atMs + 1_000 + 90_000 * next()),
				}),
			});
		}
		let deepest = 0;
		let deepestTenant = 0;
		const stories = drive(scheduler, arrivals, {
			untilMs: 3_700_000,
			latencyMs: 3_000,
			observe: (nowMs) => {
				const status = scheduler.status(nowMs);
				deepest = Math.max(deepest, status.queued);
				for (const { queued } of Object.values(status.tenants)) {
					deepestTenant = Math.max(deepestTenant, queued);
				}
			},
		});
		expect(deepest).toBe(maxQueueLength);
		expect(deepestTenant).toBe(maxQueuePerTenant);
		// Every ask was answered once, and the caps were met by shedding and refusing.
		const reasons = new Map<string, number>();
		for (const { answer } of stories.values()) {
			const key = answer?.kind === "rejected" ? (answer.reason ?? "") : (answer?.kind ?? "none");
			reasons.set(key, (reasons.get(key) ?? 0) + 1);
		}
		expect(reasons.get("none")).toBeUndefined();
		expect(reasons.get("shed")).toBeGreaterThan(100);
		expect(reasons.get("queue_full")).toBeGreaterThan(100);
		// The pool ran full but for the second half of each quiet minute (36,000 less about 6,000).
		expect(reasons.get("admitted")).toBeGreaterThan(29_000);
		const status = scheduler.status(3_700_000);
		expect(status.sinceStart.shed).toBe(reasons.get("shed"));
		expect(status.sinceStart.expired + status.sinceStart.deadlineRejected).toBe(
			reasons.get("deadline"),
		);
	});

	it("sheds the lowest-priority, newest waiter for a higher-priority arrival", () => {
		const scheduler = oneASecond({ maxQueueLength: 3 });
		scheduler.submit(ask({ ticketId: "low-old", priority: "low" }), 0);
		scheduler.submit(ask({ ticketId: "low-new", priority: "low" }), 10);
		scheduler.submit(ask({ ticketId: "normal", priority: "normal" }), 20);
		expect(scheduler.submit(ask({ ticketId: "high", priority: "high" }), 30)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 970,
		});
		const [shed] = scheduler.tick(30);
		expect(shed?.ticketId).toBe("low-new");
		expect(shed?.result).toMatchObject({ kind: "rejected", reason: "shed", position: 4 });
		expect(shed?.result.kind === "rejected" && shed.result.message).toMatch(/higher priority/);
		// Its retry-after: the three ahead of it, then itself, at one a second.
		expect(shed?.result.kind === "rejected" && shed.result.retryAfterMs).toBe(3_970);
		expect(scheduler.status(30)).toMatchObject({ queued: 3, sinceStart: { shed: 1 } });
	});

	it("refuses an arrival that is itself the lowest: queue_full, with its place and wait", () => {
		const scheduler = oneASecond({ maxQueueLength: 2 });
		scheduler.submit(ask({ priority: "low" }), 0);
		scheduler.submit(ask({ priority: "high" }), 0);
		expect(scheduler.submit(ask({ priority: "low" }), 0)).toMatchObject({
			kind: "rejected",
			reason: "queue_full",
			position: 3,
			etaMs: 3_000,
			retryAfterMs: 3_000,
		});
		// Not lower than the lowest waiter either: same class, newer.
		expect(scheduler.submit(ask({ priority: "low" }), 0)).toMatchObject({ reason: "queue_full" });
		expect(scheduler.tick(0)).toEqual([]);
	});

	it("sheds within the tenant when the tenant's own cap is reached", () => {
		const scheduler = oneASecond({ maxQueuePerTenant: 2 });
		scheduler.submit(ask({ ticketId: "other-low", tenant: "other", priority: "low" }), 0);
		scheduler.submit(ask({ ticketId: "a-low", tenant: "a", priority: "low" }), 0);
		scheduler.submit(ask({ ticketId: "a-normal", tenant: "a", priority: "normal" }), 0);
		expect(
			scheduler.submit(ask({ ticketId: "a-high", tenant: "a", priority: "high" }), 0).kind,
		).toBe("queued");
		expect(scheduler.tick(0).map(({ ticketId }) => ticketId)).toEqual(["a-low"]);
		expect(scheduler.submit(ask({ tenant: "a", priority: "normal" }), 0)).toMatchObject({
			reason: "queue_full",
		});
		expect(scheduler.submit(ask({ tenant: "b", priority: "low" }), 0).kind).toBe("queued");
	});
});

describe("waiting time", () => {
	it("tells at once an ask that cannot be admitted before its deadline: its place and wait", () => {
		const scheduler = oneASecond();
		for (let i = 0; i < 3; i++) scheduler.submit(ask(), 0);
		const decision = scheduler.submit(ask({ deadlineMs: 3_999 }), 0);
		expect(decision).toMatchObject({
			kind: "rejected",
			reason: "deadline",
			position: 4,
			etaMs: 4_000,
			retryAfterMs: 4_000,
		});
		expect(decision.kind === "rejected" && decision.message).toMatch(/4\.0 s.*longer.*4\.0 s/);
		expect(scheduler.submit(ask({ deadlineMs: 4_000 }), 0)).toEqual({
			kind: "queued",
			position: 4,
			etaMs: 4_000,
		});
		expect(scheduler.status(0).sinceStart).toEqual({ shed: 0, expired: 0, deadlineRejected: 1 });
	});

	it("caps each class's wait, which the ask's own deadline may shorten", () => {
		const scheduler = oneASecond({ maxWaitMsByPriority: { ...waitAtMost(60_000), normal: 9_000 } });
		scheduler.submit(ask({ ticketId: "capped" }), 0);
		scheduler.submit(ask({ ticketId: "own", deadlineMs: 5_000 }), 0);
		// The provider asks for a minute's pause: neither will be admitted in time.
		scheduler.pauseUntil(60_000);
		expect(scheduler.nextWakeMs(0)).toBe(5_000);
		expect(scheduler.tick(5_000)).toMatchObject([
			{ ticketId: "own", result: { reason: "deadline", retryAfterMs: 55_000 } },
		]);
		expect(scheduler.nextWakeMs(5_000)).toBe(9_000);
		expect(scheduler.tick(9_000)).toMatchObject([
			{ ticketId: "capped", result: { reason: "deadline" } },
		]);
		// Told at once when the pause alone is longer than the class may wait.
		expect(scheduler.submit(ask(), 9_000)).toMatchObject({ reason: "deadline", etaMs: 51_000 });
		expect(scheduler.status(9_000).sinceStart).toEqual({
			shed: 0,
			expired: 2,
			deadlineRejected: 1,
		});
	});

	it("expires a waiter at its class's longest wait from submission", () => {
		const scheduler = oneASecond({ maxWaitMsByPriority: { ...waitAtMost(60_000), low: 5_000 } });
		scheduler.submit(ask({ ticketId: "a" }), 0);
		scheduler.submit(ask({ ticketId: "b" }), 0);
		scheduler.submit(ask({ ticketId: "patient-low", priority: "low", deadlineMs: 1e9 }), 0);
		scheduler.pauseUntil(30_000);
		expect(scheduler.nextWakeMs(0)).toBe(5_000);
		expect(scheduler.tick(5_000)).toMatchObject([
			{ ticketId: "patient-low", result: { reason: "deadline" } },
		]);
	});
});

describe("status", () => {
	it("shows the queue by class and by tenant, the oldest wait, and tenants' own buckets", () => {
		const scheduler = oneASecond({
			tenants: { capped: { weight: 2, requestsPerMinute: 30, maxConcurrent: 5 } },
		});
		scheduler.submit(ask({ tenant: "a", priority: "high" }), 100);
		scheduler.submit(ask({ tenant: "a", priority: "low" }), 200);
		scheduler.submit(ask({ tenant: "capped", priority: "low" }), 300);
		const status = scheduler.status(1_000);
		expect(status.queued).toBe(3);
		expect(status.queuedByPriority).toEqual({ critical: 0, high: 1, normal: 0, low: 2 });
		expect(status.oldestWaitMs).toBe(900);
		expect(status.tenants).toEqual({
			acme: { weight: 1, queued: 0, inFlight: 1 },
			a: { weight: 1, queued: 2, inFlight: 0 },
			capped: {
				weight: 2,
				queued: 1,
				inFlight: 0,
				maxConcurrent: 5,
				requests: { limitPerMinute: 30, capacity: 30, remaining: 30, resetMs: 0 },
			},
		});
		expect(status.sinceStart).toEqual({ shed: 0, expired: 0, deadlineRejected: 0 });
	});
});
