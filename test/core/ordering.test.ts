// Admission order on a fake clock: priority classes, first in first out within a class, aging
// that bounds how long a waiter stays behind higher-priority work, and re-submission after a
// restart that keeps a waiter's place.
import { describe, expect, it } from "vitest";
import type { Priority } from "../../src/core/priority.ts";
import { type Outcome, Scheduler } from "../../src/core/scheduler.ts";
import { ask, options, waitAtMost } from "./build.ts";
import { type Arrival, drive, stream } from "./drive.ts";

/** Ticks once a second until the queue is empty; the ids in the order they were admitted. */
function drain(scheduler: Scheduler, fromMs: number): string[] {
	const order: string[] = [];
	for (let nowMs = fromMs; scheduler.status(nowMs).queued > 0; nowMs += 1_000) {
		for (const { ticketId, result } of scheduler.tick(nowMs) as Outcome[]) {
			order.push(result.kind === "admitted" ? ticketId : `${ticketId}:${result.reason}`);
		}
	}
	return order;
}

/** One request a second, none in the bucket: everything submitted at 0 waits. */
function oneASecond(agingBoundMs = 3_600_000): Scheduler {
	const scheduler = new Scheduler(
		options(
			{ requestsPerMinute: 60, burstRequests: 1 },
			{ agingBoundMs, maxWaitMsByPriority: waitAtMost(3_600_000) },
		),
	);
	scheduler.submit(ask({ ticketId: "first" }), 0);
	return scheduler;
}

describe("admission order", () => {
	it("admits by priority class, first in first out within a class", () => {
		const scheduler = oneASecond();
		const submitted: [string, Priority][] = [
			["low1", "low"],
			["normal1", "normal"],
			["high1", "high"],
			["low2", "low"],
			["critical1", "critical"],
			["normal2", "normal"],
			["high2", "high"],
			["critical2", "critical"],
		];
		for (const [ticketId, priority] of submitted) {
			expect(scheduler.submit(ask({ ticketId, priority }), 0).kind).toBe("queued");
		}
		expect(drain(scheduler, 1_000)).toEqual([
			"critical1",
			"critical2",
			"high1",
			"high2",
			"normal1",
			"normal2",
			"low1",
			"low2",
		]);
	});

	it("tells a new ask its place among the classes", () => {
		const scheduler = oneASecond();
		for (const priority of ["low", "high", "normal", "high"] as const) {
			scheduler.submit(ask({ priority }), 0);
		}
		// Behind the two highs, ahead of the normal and the low.
		expect(scheduler.submit(ask({ priority: "high" }), 0)).toEqual({
			kind: "queued",
			position: 3,
			etaMs: 3_000,
		});
		expect(scheduler.submit(ask({ priority: "critical" }), 0)).toEqual({
			kind: "queued",
			position: 1,
			etaMs: 1_000,
		});
	});

	it("keeps each tenant's waiters of a class in submission order while tenants take turns", () => {
		const scheduler = oneASecond();
		for (let i = 1; i <= 3; i++) {
			scheduler.submit(ask({ ticketId: `a${i}`, tenant: "a" }), i);
			scheduler.submit(ask({ ticketId: `b${i}`, tenant: "b" }), 10 + i);
		}
		expect(drain(scheduler, 1_000)).toEqual(["a1", "b1", "a2", "b2", "a3", "b3"]);
	});

	it("raises a waiter one class for every third of the aging bound it waits", () => {
		const scheduler = oneASecond(30_000);
		scheduler.pauseUntil(25_000);
		scheduler.submit(ask({ ticketId: "old-low", priority: "low" }), 0);
		scheduler.submit(ask({ ticketId: "old-normal", priority: "normal" }), 0);
		// At 25 s the old low stands with the highs, the old normal with the criticals, each ahead
		// of the new arrivals of its tier by age.
		scheduler.submit(ask({ ticketId: "high", priority: "high" }), 20_000);
		scheduler.submit(ask({ ticketId: "critical", priority: "critical" }), 20_000);
		expect(drain(scheduler, 25_000)).toEqual(["old-normal", "critical", "old-low", "high"]);
	});
});

describe("aging and the wake-up time", () => {
	it("wakes when a waiter rises to lead a head that waits for tokens it does not need", () => {
		const scheduler = new Scheduler(
			options(
				{ tokensPerMinute: 6_000, burstTokens: 5_000 },
				{ agingBoundMs: 30_000, maxWaitMsByPriority: waitAtMost(600_000) },
			),
		);
		scheduler.submit(ask({ ticketId: "drain", tokens: 5_000 }), 0);
		// The low one fits in 100 ms, but would delay the normal head's 5000 tokens (at 50 s).
		scheduler.submit(ask({ ticketId: "small-low", tenant: "b", priority: "low" }), 0);
		scheduler.submit(ask({ ticketId: "big-normal", tenant: "a", tokens: 5_000 }), 5_000);
		// At 10 s the low one rises to normal, the head's class, and leads it by age.
		expect(scheduler.nextWakeMs(5_000)).toBe(10_000);
		expect(scheduler.tick(10_000).map(({ ticketId }) => ticketId)).toEqual(["small-low"]);
		expect(scheduler.nextWakeMs(10_000)).toBe(50_100);
	});
});

describe("aging under a stream of higher-priority work", () => {
	const agingBoundMs = 30_000;
	// 600 requests a minute, a small burst, and one-second leases.
	const scheduler = () =>
		new Scheduler(
			options(
				{ requestsPerMinute: 600, burstRequests: 10 },
				{ agingBoundMs, maxWaitMsByPriority: waitAtMost(600_000) },
			),
		);

	function run(priority: Priority, everyMs: number, lowTenant: string) {
		// A backlog of 20 first, then a stream at `everyMs`: the bucket never refills to spare.
		const arrivals: Arrival[] = [
			...Array.from({ length: 20 }, () => ({ atMs: 0, ask: ask({ tenant: "busy", priority }) })),
			...stream(0, 300_000, everyMs, () => ask({ tenant: "busy", priority })),
			{ atMs: 60_000, ask: ask({ ticketId: "low", tenant: lowTenant, priority: "low" }) },
		];
		const stories = drive(scheduler(), arrivals, { untilMs: 300_000, latencyMs: 1_000 });
		const low = stories.get("low");
		const others = [...stories.values()].filter((story) => story.ask.ticketId !== "low");
		return { low, others };
	}

	it.each(["another tenant", "the same tenant"])(
		"lets a low request from %s start within the aging bound under 100% high load",
		(who) => {
			const { low, others } = run("high", 100, who === "the same tenant" ? "busy" : "quiet");
			expect(low?.answer?.kind).toBe("admitted");
			const waitedMs = (low?.answer?.atMs ?? 0) - 60_000;
			expect(waitedMs).toBeLessThanOrEqual(agingBoundMs);
			// It did wait behind the highs: until it had risen to their class (two thirds of it).
			expect(waitedMs).toBeGreaterThanOrEqual((2 / 3) * agingBoundMs);
			// And the highs kept the pool busy, each admitted within seconds (but the last few, which
			// were still waiting when the simulation ended).
			const admitted = others.filter((story) => story.answer?.kind === "admitted");
			expect(admitted.length).toBeGreaterThan(others.length - 20);
			const waits = admitted.map((story) => (story.answer?.atMs ?? 0) - story.arrivedMs);
			expect(Math.max(...waits)).toBeLessThan(5_000);
			expect(admitted.length).toBeGreaterThan(0.98 * 10 * 300);
		},
	);

	it("lets a low request start one fair turn after the bound under a critical overload", () => {
		// Criticals at twice the pool's rate: they queue until their own deadline.
		const { low } = run("critical", 50, "quiet");
		expect(low?.answer?.kind).toBe("admitted");
		// Critical itself at the bound; then its tenant's turn comes within one refill (100 ms).
		expect((low?.answer?.atMs ?? 0) - 60_000).toBeGreaterThanOrEqual(agingBoundMs);
		expect((low?.answer?.atMs ?? 0) - 60_000).toBeLessThanOrEqual(agingBoundMs + 100);
	});
});

describe("re-submission after a restart", () => {
	it("keeps a waiter's place among its tenant's waiters, by its original submission time", () => {
		const before = oneASecond();
		for (const [ticketId, atMs] of [
			["a", 10],
			["b", 20],
			["c", 30],
		] as const) {
			before.submit(ask({ ticketId }), atMs);
		}
		// Restarted at 5 s: a new ask comes first, then the Worker re-submits the waiters.
		const after = new Scheduler(
			options(
				{ requestsPerMinute: 60, burstRequests: 1 },
				{ maxWaitMsByPriority: waitAtMost(3_600_000) },
			),
			JSON.parse(JSON.stringify(before.snapshot())),
		);
		after.submit(ask({ ticketId: "first-after" }), 5_000);
		after.submit(ask({ ticketId: "new" }), 5_000);
		expect(after.submit(ask({ ticketId: "c", submittedMs: 30 }), 5_000).kind).toBe("queued");
		after.submit(ask({ ticketId: "a", submittedMs: 10 }), 5_000);
		after.submit(ask({ ticketId: "b", submittedMs: 20 }), 5_000);
		expect(after.status(5_000).oldestWaitMs).toBe(4_990);
		expect(drain(after, 6_000)).toEqual(["a", "b", "c", "new"]);
	});

	it("keeps a waiter's age: its aging and its class's longest wait count from its submission", () => {
		const scheduler = new Scheduler(
			options(
				{ requestsPerMinute: 60, burstRequests: 1 },
				{ agingBoundMs: 30_000, maxWaitMsByPriority: { ...waitAtMost(600_000), low: 100_000 } },
			),
		);
		scheduler.submit(ask({ ticketId: "first" }), 100_000);
		scheduler.submit(ask({ ticketId: "fresh-critical", priority: "critical" }), 100_000);
		// Waited 40 s before the restart: risen to critical, and older than the fresh one.
		scheduler.submit(ask({ ticketId: "aged-low", priority: "low", submittedMs: 60_000 }), 100_000);
		// Waited 100 s already: the low class's longest wait is over.
		expect(
			scheduler.submit(ask({ priority: "low", submittedMs: 0, ticketId: "expired" }), 100_000),
		).toMatchObject({ kind: "rejected", reason: "deadline" });
		expect(drain(scheduler, 101_000)).toEqual(["aged-low", "fresh-critical"]);
	});
});
