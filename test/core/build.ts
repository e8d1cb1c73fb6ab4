// Builders shared by the core tests: pool limits and asks with defaults a test overrides.
import type { PoolLimits } from "../../src/core/limits.ts";
import type { Priority } from "../../src/core/priority.ts";
import type { Ask, SchedulerOptions } from "../../src/core/scheduler.ts";

export function poolLimits(overrides: Partial<PoolLimits> = {}): PoolLimits {
	return {
		requestsPerMinute: 600,
		tokensPerMinute: 60_000,
		burstRequests: 100,
		burstTokens: 10_000,
		maxConcurrent: 1_000,
		models: {},
		...overrides,
	};
}

export function options(
	limits: Partial<PoolLimits> = {},
	rest: Partial<Omit<SchedulerOptions, "limits">> = {},
): SchedulerOptions {
	const maxQueueLength = rest.maxQueueLength ?? 10_000;
	return {
		limits: poolLimits(limits),
		leaseTtlMs: 600_000,
		maxQueueLength,
		maxQueuePerTenant: maxQueueLength,
		// The waits and aging bound these tests were written against.
		maxWaitMsByPriority: { critical: 60_000, high: 60_000, normal: 120_000, low: 300_000 },
		agingBoundMs: 60_000,
		tenants: {},
		// No headroom: these tests are of the order itself (headroom.test.ts tests headroom).
		headroom: { floor: 0, horizonMs: 0 },
		...rest,
	};
}

/** The same longest wait for every class. */
export function waitAtMost(maxWaitMs: number): Record<Priority, number> {
	return { critical: maxWaitMs, high: maxWaitMs, normal: maxWaitMs, low: maxWaitMs };
}

let nextTicket = 0;

export function ask(overrides: Partial<Ask> = {}): Ask {
	nextTicket++;
	return {
		ticketId: `t${nextTicket}`,
		tenant: "acme",
		model: "gpt-test",
		priority: "normal",
		tokens: 10,
		deadlineMs: Number.MAX_SAFE_INTEGER,
		...overrides,
	};
}
