// The configuration: what an operator gets told about a bad one, and the defaults of a good one.
import { describe, expect, it } from "vitest";
import { parseConfig, poolLimits } from "../src/config.ts";
import { OPENAI_POOL } from "./support/config-pool.ts";

const hash = "a".repeat(64);
const pool = OPENAI_POOL;
const tenant = { name: "team", keySha256: [hash], pools: ["*"] };

describe("a bad configuration", () => {
	it("refuses forwarding a credential, identity or settled header, and an organization on Anthropic", () => {
		const result = parseConfig({
			pools: [
				{
					...pool,
					forwardHeaders: ["x-api-key", "openai-organization", "x-forwarded-for", "X-Up"],
				},
				{ ...pool, name: "claude", provider: "anthropic", organization: "org-1" },
			],
			tenants: [tenant],
		});
		const message = result.ok ? "" : result.message;
		for (const index of [0, 1, 2]) {
			expect(message).toContain(
				`pools.0.forwardHeaders.${index}: tollbooth sets or drops this header itself`,
			);
		}
		expect(message).toContain("pools.0.forwardHeaders.3: a lower-case header name");
		expect(message).toContain("pools.1.organization: only OpenAI pools");
	});

	it("defaults to passing unknown routes through, with no betas, headers or organization", () => {
		const result = parseConfig({ pools: [pool], tenants: [tenant] });
		expect(result.ok && result.config.pools[0]).toMatchObject({
			passThrough: "metered",
			allowedBetas: [],
			forwardHeaders: [],
		});
		expect(result.ok && result.config.pools[0]?.organization).toBeUndefined();
	});

	it("names every bad field and what is wrong with it", () => {
		const result = parseConfig({
			pools: [{ ...pool, baseUrl: "ftp://x", limits: { ...pool.limits, requestsPerMinute: 0 } }],
			tenants: [{ ...tenant, keySha256: ["not-a-hash"], pools: ["nope"] }],
		});
		expect(result.ok).toBe(false);
		if (result.ok) return;
		expect(result.message).toContain("TOLLBOOTH_CONFIG.pools.0.baseUrl");
		expect(result.message).toContain("TOLLBOOTH_CONFIG.pools.0.limits.requestsPerMinute");
		expect(result.message).toContain(
			"TOLLBOOTH_CONFIG.tenants.0.keySha256.0: must be a lower-case hex SHA-256",
		);
		expect(result.message).toContain('TOLLBOOTH_CONFIG.tenants.0.pools.0: no pool named "nope"');
	});

	it("says so for JSON that does not parse, a missing value, reserved names and reused keys", () => {
		expect(parseConfig("{").ok).toBe(false);
		expect(parseConfig(undefined)).toEqual({
			ok: false,
			message: expect.stringContaining("not set"),
		});
		const reserved = parseConfig({ pools: [{ ...pool, name: "admin" }], tenants: [tenant] });
		expect(reserved.ok ? "" : reserved.message).toContain("reserved");
		const shared = parseConfig({ pools: [pool], tenants: [tenant, { ...tenant, name: "other" }] });
		expect(shared.ok ? "" : shared.message).toContain('already given to tenant "team"');
	});
});

describe("a fallback pool", () => {
	it("must exist, be another pool, and take the same API", () => {
		const anthropic = {
			...pool,
			name: "claude",
			provider: "anthropic",
			baseUrl: "https://api.anthropic.com/v1",
		};
		const check = (fallback: string) => {
			const result = parseConfig({
				pools: [{ ...pool, fallback: { pool: fallback } }, anthropic],
				tenants: [tenant],
			});
			return result.ok ? "ok" : result.message;
		};
		expect(check("nope")).toContain('no pool named "nope"');
		expect(check("openai")).toContain("cannot fall back to itself");
		expect(check("claude")).toContain("speaks another API");
	});
});

describe("a good configuration", () => {
	it("fills documented defaults, from a JSON string as .dev.vars gives it", () => {
		const result = parseConfig(JSON.stringify({ pools: [pool], tenants: [tenant] }));
		if (!result.ok) throw new Error(result.message);
		const [parsed] = result.config.pools;
		expect(parsed?.maxWaitMs).toEqual({
			critical: 30_000,
			high: 60_000,
			normal: 120_000,
			low: 300_000,
		});
		expect(parsed?.maxAttempts).toBe(3);
		expect(result.config.tenants[0]?.defaultPriority).toBe("normal");
		expect(result.config.tenants[0]?.weight).toBe(1);
		expect(result.config.maxBodyBytes).toBe(10 * 1024 * 1024);
		// The request burst defaults to 10 seconds' worth; the token burst to the whole minute, as
		// the providers hold it, so any request the provider would take fits.
		const limits = poolLimits(parsed ?? (undefined as never));
		expect(limits.burstRequests).toBe(100);
		expect(limits.burstTokens).toBe(60_000);
	});

	it("takes one wait for every priority, or some classes overridden", () => {
		const one = parseConfig({ pools: [{ ...pool, maxWaitMs: 5000 }], tenants: [tenant] });
		expect(one.ok && one.config.pools[0]?.maxWaitMs.low).toBe(5000);
		const some = parseConfig({
			pools: [{ ...pool, maxWaitMs: { critical: 1000 } }],
			tenants: [tenant],
		});
		expect(some.ok && some.config.pools[0]?.maxWaitMs).toEqual({
			critical: 1000,
			high: 60_000,
			normal: 120_000,
			low: 300_000,
		});
	});
});
