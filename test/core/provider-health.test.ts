// ProviderHealth: the breaker, retry budget and backoff composed as the Pool object uses them.
import { describe, expect, it } from "vitest";
import { ProviderHealth } from "../../src/core/provider-health.ts";

const half = () => 0.5;
const START = 1_000_000;

describe("after a failed send", () => {
	it("retries a provider failure with jittered backoff, within the attempts allowed", () => {
		const health = new ProviderHealth({ baseMs: 500, capMs: 8000 });
		health.gate(true, START);
		const first = health.failed({ status: 503 }, 1, 3, undefined, START, half);
		expect(first).toEqual({ retry: true, delayMs: 250, reason: "server_error" });
		const second = health.failed({ kind: "connection" }, 2, 3, undefined, START, half);
		expect(second).toMatchObject({ retry: true, delayMs: 500 });
		expect(health.failed({ status: 529 }, 3, 3, undefined, START, half)).toEqual({
			retry: false,
			reason: "attempts_exhausted",
		});
	});

	it("never retries a client error, and never undercuts the provider's retry-after", () => {
		const health = new ProviderHealth();
		expect(health.failed({ status: 400 }, 1, 3, undefined, START, half)).toEqual({
			retry: false,
			reason: "client_error",
		});
		expect(health.failed({ status: 503 }, 1, 3, 4000, START, half)).toMatchObject({
			retry: true,
			delayMs: 4000,
		});
	});

	it("stops retrying once retries pass the budget of a tenth of the last minute's requests", () => {
		const health = new ProviderHealth();
		// 200 requests a minute earn 20 retries; every one of them fails.
		let retried = 0;
		for (let i = 0; i < 200; i++) {
			const nowMs = START + i * 300;
			if (!health.gate(true, nowMs).allowed) continue;
			const decision = health.failed({ status: 500 }, 1, 3, undefined, nowMs, half);
			if (decision.retry) retried += 1;
			health.succeeded(nowMs); // keep the breaker closed: this test is about the budget
		}
		expect(retried).toBeGreaterThan(0);
		expect(retried).toBeLessThanOrEqual(20);
	});
});

describe("the breaker gate", () => {
	it("opens after sustained failures, answers at once with a retry-after, and a good probe closes it", () => {
		const health = new ProviderHealth();
		let nowMs = START;
		for (let i = 0; i < 10; i++, nowMs += 10) {
			health.gate(true, nowMs);
			health.failed({ status: 502 }, 3, 3, undefined, nowMs, half);
		}
		const refused = health.gate(true, nowMs);
		expect(refused).toMatchObject({ allowed: false, reason: "circuit_open" });
		if (refused.allowed) return;
		nowMs += refused.retryAfterMs;
		expect(health.gate(true, nowMs)).toEqual({ allowed: true, probe: true });
		expect(health.gate(true, nowMs)).toMatchObject({ allowed: false, reason: "probe_in_flight" });
		health.succeeded(nowMs);
		expect(health.gate(true, nowMs)).toEqual({ allowed: true, probe: false });
		expect(health.status(nowMs).state).toBe("closed");
	});

	it("survives a snapshot round trip", () => {
		const health = new ProviderHealth();
		for (let i = 0; i < 10; i++) {
			health.gate(true, START);
			health.failed({ status: 502 }, 3, 3, undefined, START, half);
		}
		const restored = new ProviderHealth(undefined, JSON.parse(JSON.stringify(health.snapshot())));
		expect(restored.gate(true, START).allowed).toBe(false);
	});
});
