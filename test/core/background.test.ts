// Background work in the pool: refused at once while interactive work waits or the pool is down to
// its headroom, and, with nothing else running, still using the whole refill rate.
import { describe, expect, it } from "vitest";
import { loadConfig, poolStateOptions } from "../../src/config.ts";
import { BACKGROUND_BUCKET_HEADROOM, BACKGROUND_SLOT_HEADROOM } from "../../src/core/background.ts";
import { PoolState } from "../../src/core/pool-state.ts";
import { ask } from "./build.ts";

/** A pool as configured (defaults from the configuration schema), for tenant "acme". */
function pool(limits: Record<string, number>): PoolState {
	const loaded = loadConfig({
		pools: [
			{ name: "p", provider: "openai", baseUrl: "https://p.test/v1", apiKeySecret: "K", limits },
		],
		tenants: [{ name: "acme", keySha256: ["0".repeat(64)], pools: ["*"] }],
	});
	if (!loaded.ok) throw new Error(loaded.message);
	const [config] = loaded.config.pools;
	if (!config) throw new Error("no pool");
	return new PoolState(poolStateOptions(config, loaded.config.tenants), undefined, 0);
}

const generous = { requestsPerMinute: 600, tokensPerMinute: 10_000_000, maxConcurrent: 1000 };

const background = (overrides = {}) => ask({ priority: "low", background: true, ...overrides });

describe("background asks", () => {
	it("are refused at once, with a retry-after, while an interactive request waits", () => {
		const scheduler = pool({ ...generous, burstRequests: 1, requestsPerMinute: 60 });
		expect(scheduler.submit(ask({ priority: "high" }), 0).kind).toBe("admitted");
		expect(scheduler.submit(ask({ priority: "high" }), 0).kind).toBe("queued");
		const refused = scheduler.submit(background(), 2000);
		expect(refused).toMatchObject({ kind: "rejected", reason: "no_spare_capacity" });
		expect(refused.kind === "rejected" && refused.retryAfterMs).toBeGreaterThan(0);
		expect(scheduler.status(2000).queued).toBe(1);
	});

	it("never take the headroom of the buckets or of the concurrency slots", () => {
		const scheduler = pool({ ...generous, burstRequests: 1000, maxConcurrent: 20 });
		let admitted = 0;
		while (scheduler.submit(background(), 0).kind === "admitted") admitted++;
		// 20 slots, of which a quarter stay free for interactive arrivals.
		expect(admitted).toBe(20 * (1 - BACKGROUND_SLOT_HEADROOM));
		// An interactive request still goes at once.
		expect(scheduler.submit(ask({ priority: "high" }), 0).kind).toBe("admitted");

		const byRate = pool({ ...generous, burstRequests: 100 });
		let taken = 0;
		for (;;) {
			const decision = byRate.submit(background(), 0);
			if (decision.kind !== "admitted") {
				// The next request refills in 100 ms at 600 a minute.
				expect(decision).toMatchObject({ reason: "no_spare_capacity", retryAfterMs: 100 });
				break;
			}
			byRate.release(decision.lease.ticketId, undefined, true, undefined, 0);
			taken++;
		}
		expect(taken).toBe(Math.round(100 * (1 - BACKGROUND_BUCKET_HEADROOM)));
		const interactive = [1, 2, 3].map(() => byRate.submit(ask({ priority: "high" }), 0).kind);
		expect(interactive).toEqual(["admitted", "admitted", "admitted"]);
	});

	it("go at the refill rate from the start, never emptying a minute's burst", () => {
		const scheduler = pool({ ...generous, requestsPerMinute: 1200 });
		let admitted = 0;
		// The first second: a consumer asking every 10 ms takes a tenth of the burst, then the refill.
		for (let nowMs = 0; nowMs < 1000; nowMs += 10) {
			for (;;) {
				const decision = scheduler.submit(background(), nowMs);
				if (decision.kind !== "admitted") break;
				scheduler.release(decision.lease.ticketId, undefined, true, undefined, nowMs);
				admitted++;
			}
		}
		const { capacity, remaining } = scheduler.status(1000).requests;
		// A tenth of the burst, and a second's refill (20), at most.
		expect(admitted).toBeLessThanOrEqual(capacity / 10 + 20);
		expect(remaining).toBeGreaterThanOrEqual(capacity * 0.9 - 1);
	});

	it("send a line larger than the spare share once the bucket is full, never starving it", () => {
		const scheduler = pool({ ...generous, tokensPerMinute: 40_000 });
		const interactive = scheduler.submit(ask({ priority: "high", tokens: 8_000 }), 0);
		expect(interactive.kind).toBe("admitted");
		// 8,192 tokens is more than a tenth of 40,000: it waits for the bucket to fill again.
		expect(scheduler.submit(background({ tokens: 8_192 }), 1_000).kind).toBe("rejected");
		expect(scheduler.submit(background({ tokens: 8_192 }), 13_000).kind).toBe("admitted");
	});

	it("are refused while the provider is failing, so a batch line is never the breaker's probe", () => {
		const failing = pool(generous);
		for (let n = 0; n < 20 && failing.status(0).provider.state === "closed"; n++) {
			const decision = failing.submit(ask({ priority: "high" }), 0);
			if (decision.kind !== "admitted") break;
			failing.attemptEnded(decision.lease.ticketId, { status: 500 }, 0, () => 0.5);
		}
		expect(failing.status(0).provider.state).not.toBe("closed");
		expect(failing.submit(background(), 0)).toMatchObject({
			kind: "rejected",
			reason: "no_spare_capacity",
		});
	});

	it("with nothing else running, use at least 90% of the pool's request rate", () => {
		const scheduler = pool({ ...generous, burstRequests: 100 });
		const minutes = 10;
		let admitted = 0;
		// A consumer that asks every 50 ms, as many as it is given, each line done at once.
		for (let nowMs = 0; nowMs < minutes * 60_000; nowMs += 50) {
			for (;;) {
				const decision = scheduler.submit(background(), nowMs);
				if (decision.kind !== "admitted") break;
				scheduler.release(decision.lease.ticketId, undefined, true, undefined, nowMs);
				admitted++;
			}
		}
		expect(admitted).toBeGreaterThanOrEqual(0.9 * 600 * minutes);
		expect(admitted).toBeLessThanOrEqual(600 * minutes + 100);
	});
});
