// Unit tests of the pool's circuit breaker: when it opens, how it answers while open, the single
// half-open probe, the open period's backoff, and its snapshot.
import { describe, expect, it } from "vitest";
import {
	CircuitBreaker,
	type CircuitBreakerSnapshot,
	DEFAULT_CIRCUIT_BREAKER,
} from "../../src/core/circuit-breaker.ts";

const T0 = 1_763_000_000_000;

function record(breaker: CircuitBreaker, outcomes: string, fromMs: number, everyMs = 1): number {
	let atMs = fromMs;
	for (const outcome of outcomes) {
		if (outcome === "F") breaker.recordFailure(atMs);
		else breaker.recordSuccess(atMs);
		atMs += everyMs;
	}
	return atMs;
}

/** A breaker that opened at T0 (its first open period: 100 ms). */
function opened(): CircuitBreaker {
	const breaker = new CircuitBreaker();
	record(breaker, "FFFFF", T0 - 4);
	expect(breaker.state(T0)).toBe("open");
	return breaker;
}

describe("circuit breaker", () => {
	it("opens on five failures that are at least half of the last twenty outcomes", () => {
		const breaker = new CircuitBreaker();
		expect(breaker.allow(T0)).toEqual({ allowed: true, probe: false });
		record(breaker, "FFFF", T0);
		expect(breaker.state(T0 + 4)).toBe("closed");
		breaker.recordFailure(T0 + 4);
		expect(breaker.state(T0 + 4)).toBe("open");

		// Under a healthy stream, it takes ten failures of the last twenty.
		const busy = new CircuitBreaker();
		const atMs = record(busy, "S".repeat(50), T0);
		const afterNine = record(busy, "F".repeat(9), atMs);
		expect(busy.state(afterNine)).toBe("closed");
		busy.recordFailure(afterNine);
		expect(busy.state(afterNine)).toBe("open");
	});

	it("stays closed on occasional failures and on failures spread over more than 10 s", () => {
		const breaker = new CircuitBreaker();
		record(breaker, "SFSSFSSFSSFSSFSSFSSS", T0);
		expect(breaker.status(T0 + 100)).toMatchObject({ state: "closed", failures: 6, outcomes: 20 });
		const slow = new CircuitBreaker();
		record(slow, "FFFFFFFFFF", T0, 2_600); // one failure every 2.6 s: never five within 10 s
		expect(slow.state(T0 + 30_000)).toBe("closed");
	});

	it("answers at once while open, with the time until a probe may go", () => {
		const breaker = opened();
		expect(breaker.allow(T0)).toEqual({
			allowed: false,
			retryAfterMs: 100,
			reason: "circuit_open",
		});
		expect(breaker.allow(T0 + 60)).toMatchObject({ allowed: false, retryAfterMs: 40 });
		expect(breaker.status(T0 + 60)).toMatchObject({ state: "open", retryAfterMs: 40 });
		// Late failures of attempts sent before it opened do not prolong it.
		record(breaker, "FFF", T0 + 70);
		expect(breaker.state(T0 + 100)).toBe("half-open");
	});

	it("lets exactly one probe through when half-open; its success closes the breaker", () => {
		const breaker = opened();
		expect(breaker.allow(T0 + 100)).toEqual({ allowed: true, probe: true });
		for (const atMs of [T0 + 100, T0 + 130, T0 + 5_000]) {
			expect(breaker.allow(atMs)).toMatchObject({ allowed: false, reason: "probe_in_flight" });
		}
		expect(breaker.allow(T0 + 5_000)).toMatchObject({ retryAfterMs: 100 });
		breaker.recordSuccess(T0 + 5_050);
		expect(breaker.state(T0 + 5_050)).toBe("closed");
		expect(breaker.allow(T0 + 5_050)).toEqual({ allowed: true, probe: false });
		// The failures that opened it are forgotten: one more does not open it again.
		breaker.recordFailure(T0 + 5_060);
		expect(breaker.status(T0 + 5_060)).toMatchObject({ state: "closed", failures: 1 });
	});

	it("opens again after a failed probe, doubling the open period up to 500 ms", () => {
		const breaker = opened();
		let nowMs = T0;
		const periods: number[] = [];
		for (let probe = 0; probe < 6; probe++) {
			const refused = breaker.allow(nowMs);
			if (refused.allowed) throw new Error("expected the breaker to be open");
			periods.push(refused.retryAfterMs);
			nowMs += refused.retryAfterMs;
			expect(breaker.allow(nowMs)).toEqual({ allowed: true, probe: true });
			nowMs += 20;
			breaker.recordFailure(nowMs);
		}
		expect(periods).toEqual([100, 200, 400, 500, 500, 500]);
		expect(breaker.status(nowMs)).toMatchObject({ state: "open", failedProbes: 6 });
		nowMs += 500;
		breaker.allow(nowMs);
		breaker.recordSuccess(nowMs + 20);
		record(breaker, "FFFFF", nowMs + 30);
		expect(breaker.allow(nowMs + 34)).toMatchObject({ retryAfterMs: 100 });
	});

	it("lets another probe go when one never reported back", () => {
		const breaker = opened();
		expect(breaker.allow(T0 + 100)).toMatchObject({ probe: true });
		const timeoutMs = DEFAULT_CIRCUIT_BREAKER.probeTimeoutMs;
		expect(breaker.allow(T0 + 100 + timeoutMs - 1)).toMatchObject({
			allowed: false,
			retryAfterMs: 1,
		});
		expect(breaker.allow(T0 + 100 + timeoutMs)).toEqual({ allowed: true, probe: true });
	});

	it("survives a JSON round trip in any state, and falls back to closed on garbage", () => {
		const breaker = opened();
		breaker.allow(T0 + 100); // the probe is in flight
		const saved: CircuitBreakerSnapshot = JSON.parse(JSON.stringify(breaker.snapshot()));
		const restored = new CircuitBreaker(DEFAULT_CIRCUIT_BREAKER, saved);
		expect(restored.status(T0 + 120)).toEqual(breaker.status(T0 + 120));
		expect(restored.allow(T0 + 120)).toMatchObject({ reason: "probe_in_flight" });
		restored.recordFailure(T0 + 150);
		expect(restored.allow(T0 + 150)).toMatchObject({ retryAfterMs: 200 });

		const closed = new CircuitBreaker();
		record(closed, "FFFF", T0);
		const reloaded = new CircuitBreaker(undefined, JSON.parse(JSON.stringify(closed.snapshot())));
		reloaded.recordFailure(T0 + 5);
		expect(reloaded.state(T0 + 5)).toBe("open");

		const garbage = {
			phase: "open",
			openUntilMs: null,
			failedProbes: -3,
			probeStartedMs: "x",
			outcomes: [null, { atMs: "soon", failed: true }, { atMs: T0, failed: "yes" }],
		} as unknown as CircuitBreakerSnapshot;
		expect(new CircuitBreaker(undefined, garbage).status(T0)).toEqual({
			state: "closed",
			retryAfterMs: 0,
			failures: 0,
			outcomes: 0,
			failedProbes: 0,
		});
	});
});
