// Background work in the scheduler: refused at once while interactive work waits or the pool is
// down to its headroom, and, with nothing else running, still using the whole refill rate.
import { describe, expect, it } from "vitest";
import { BACKGROUND_HEADROOM } from "../../src/core/background.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { ask, options } from "./build.ts";

const background = (overrides = {}) => ask({ priority: "low", background: true, ...overrides });

describe("background asks", () => {
	it("are refused at once, with a retry-after, while an interactive request waits", () => {
		const scheduler = new Scheduler(options({ burstRequests: 1, requestsPerMinute: 60 }));
		expect(scheduler.submit(ask({ priority: "high" }), 0).kind).toBe("admitted");
		expect(scheduler.submit(ask({ priority: "high" }), 0).kind).toBe("queued");
		const refused = scheduler.submit(background(), 2000);
		expect(refused).toMatchObject({ kind: "rejected", reason: "no_spare_capacity" });
		expect(refused.kind === "rejected" && refused.retryAfterMs).toBeGreaterThan(0);
		expect(scheduler.status(2000).queued).toBe(1);
	});

	it("never take the headroom of the buckets or of the concurrency slots", () => {
		const scheduler = new Scheduler(options({ burstRequests: 100, maxConcurrent: 20 }));
		let admitted = 0;
		while (scheduler.submit(background(), 0).kind === "admitted") admitted++;
		// 20 slots, of which a quarter stay free for interactive arrivals.
		expect(admitted).toBe(20 * (1 - BACKGROUND_HEADROOM));
		// An interactive request still goes at once.
		expect(scheduler.submit(ask({ priority: "high" }), 0).kind).toBe("admitted");

		const byRate = new Scheduler(options({ burstRequests: 100, requestsPerMinute: 600 }));
		let taken = 0;
		for (;;) {
			const decision = byRate.submit(background(), 0);
			if (decision.kind !== "admitted") {
				// The next request refills in 100 ms at 600 a minute.
				expect(decision).toMatchObject({ reason: "no_spare_capacity", retryAfterMs: 100 });
				break;
			}
			byRate.release(decision.lease.ticketId, undefined, 0);
			taken++;
		}
		expect(taken).toBe(100 * (1 - BACKGROUND_HEADROOM));
		const interactive = [1, 2, 3].map(() => byRate.submit(ask({ priority: "high" }), 0).kind);
		expect(interactive).toEqual(["admitted", "admitted", "admitted"]);
	});

	it("with nothing else running, use at least 90% of the pool's request rate", () => {
		const scheduler = new Scheduler(options({ requestsPerMinute: 600, burstRequests: 100 }));
		const minutes = 10;
		let admitted = 0;
		// A consumer that asks every 50 ms, as many as it is given, each line done at once.
		for (let nowMs = 0; nowMs < minutes * 60_000; nowMs += 50) {
			for (;;) {
				const decision = scheduler.submit(background(), nowMs);
				if (decision.kind !== "admitted") break;
				scheduler.release(decision.lease.ticketId, undefined, nowMs);
				admitted++;
			}
		}
		expect(admitted).toBeGreaterThanOrEqual(0.9 * 600 * minutes);
		expect(admitted).toBeLessThanOrEqual(600 * minutes + 100);
	});
});
