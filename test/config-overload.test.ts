// The configuration of issue 12: leases renewed within 30 s, headroom for higher classes, and
// sliding-window limits for a pool or one of its models; what an operator is told when they are wrong.
import { describe, expect, it } from "vitest";
import { parseConfig, poolLimits, poolStateOptions } from "../src/config.ts";
import { OPENAI_POOL } from "./support/config-pool.ts";

const pool = OPENAI_POOL;
const tenant = { name: "team", keySha256: ["a".repeat(64)], pools: ["*"] };

describe("overload settings", () => {
	it("defaults to 30 s leases, headroom over a 1 s horizon with no floor, and token buckets", () => {
		const result = parseConfig({ pools: [pool], tenants: [tenant] });
		if (!result.ok) throw new Error(result.message);
		const [parsed] = result.config.pools;
		if (!parsed) throw new Error("no pool");
		expect(parsed.leaseTtlMs).toBe(30_000);
		expect(parsed.headroom).toEqual({ floor: 0, horizonMs: 1_000 });
		expect(poolLimits(parsed)).toMatchObject({ algorithm: "token-bucket", windowMs: 60_000 });
		expect(poolStateOptions(parsed, result.config.tenants).scheduler.headroom).toEqual({
			floor: 0,
			horizonMs: 1_000,
		});
	});

	it("takes a sliding window for the pool and for one model", () => {
		const result = parseConfig({
			pools: [
				{
					...pool,
					limits: {
						...pool.limits,
						algorithm: "sliding-window",
						windowMs: 10_000,
						models: {
							"gpt-4o": {
								requestsPerMinute: 60,
								tokensPerMinute: 6_000,
								algorithm: "sliding-window",
							},
						},
					},
				},
			],
			tenants: [tenant],
		});
		if (!result.ok) throw new Error(result.message);
		const limits = poolLimits(result.config.pools[0] as Parameters<typeof poolLimits>[0]);
		expect(limits).toMatchObject({ algorithm: "sliding-window", windowMs: 10_000 });
		expect(limits.models["gpt-4o"]).toMatchObject({
			algorithm: "sliding-window",
			windowMs: 60_000,
		});
	});

	it("names a wrong algorithm, window, floor or horizon", () => {
		const result = parseConfig({
			pools: [
				{
					...pool,
					limits: { ...pool.limits, algorithm: "leaky-bucket", windowMs: 0 },
					headroom: { floor: 0.7, horizonMs: -1 },
				},
			],
			tenants: [tenant],
		});
		const message = result.ok ? "" : result.message;
		expect(message).toContain("TOLLBOOTH_CONFIG.pools.0.limits.algorithm");
		expect(message).toContain("TOLLBOOTH_CONFIG.pools.0.limits.windowMs");
		expect(message).toContain("TOLLBOOTH_CONFIG.pools.0.headroom.floor");
		expect(message).toContain("TOLLBOOTH_CONFIG.pools.0.headroom.horizonMs");
	});
});
