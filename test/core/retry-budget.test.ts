// Unit tests of the retry budget: a tenth of the last minute's requests, a floor for idle pools,
// a window that slides in 1 s buckets, and a snapshot that survives JSON.
import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_BUDGET, RetryBudget } from "../../src/core/retry-budget.ts";

const T0 = 1_763_000_000_000; // epoch-sized, as Date.now() gives

function requests(budget: RetryBudget, count: number, atMs: number): void {
	for (let i = 0; i < count; i++) budget.recordRequest(atMs);
}

/** Takes retries while the budget allows, up to `wanted`; returns how many it got. */
function retryWhileAllowed(budget: RetryBudget, wanted: number, atMs: number): number {
	let taken = 0;
	while (taken < wanted && budget.canRetry(atMs).allowed) {
		budget.recordRetry(atMs);
		taken++;
	}
	return taken;
}

describe("retry budget", () => {
	it("allows retries up to a tenth of the window's requests, then says why not", () => {
		const budget = new RetryBudget();
		requests(budget, 300, T0);
		expect(retryWhileAllowed(budget, 1_000, T0 + 500)).toBe(30);
		expect(budget.canRetry(T0 + 500)).toEqual({
			allowed: false,
			reason: "retry_budget_exhausted",
			retries: 30,
			allowance: 30,
		});
		requests(budget, 10, T0 + 900);
		expect(budget.canRetry(T0 + 900)).toEqual({ allowed: true, retries: 30, allowance: 31 });
	});

	it("lets a nearly idle pool retry a few times a minute", () => {
		const budget = new RetryBudget();
		requests(budget, 3, T0);
		expect(DEFAULT_RETRY_BUDGET.minRetriesPerWindow).toBe(10);
		expect(retryWhileAllowed(budget, 100, T0 + 1_000)).toBe(10);
		expect(new RetryBudget().canRetry(T0)).toMatchObject({ allowed: true, allowance: 10 });
	});

	it("forgets requests and retries a minute later, one 1 s bucket at a time", () => {
		const budget = new RetryBudget();
		requests(budget, 200, T0); // bucket of T0 (T0 is a whole second)
		requests(budget, 100, T0 + 30_000);
		expect(retryWhileAllowed(budget, 1_000, T0 + 30_000)).toBe(30);
		// The first bucket is still in the window for the rest of the 60th second...
		expect(budget.canRetry(T0 + 59_999)).toMatchObject({ allowed: false, allowance: 30 });
		// ...and leaves it when the 61st begins: 100 requests earn 10, and 30 retries remain.
		expect(budget.canRetry(T0 + 60_000)).toMatchObject({ retries: 30, allowance: 10 });
		// Once the retries' bucket leaves too, the budget is fresh.
		expect(budget.canRetry(T0 + 90_000)).toEqual({ allowed: true, retries: 0, allowance: 10 });
		expect(budget.canRetry(T0 + 10 * 365 * 86_400_000)).toMatchObject({ retries: 0 });
	});

	it("holds retries to a tenth of requests over any minute of a long outage", () => {
		const budget = new RetryBudget();
		const retriesAt: number[] = [];
		const requestsAt: number[] = [];
		// 20 requests a second for 5 minutes, every attempt failing and asking for 2 retries.
		for (let ms = 0; ms < 300_000; ms += 50) {
			budget.recordRequest(T0 + ms);
			requestsAt.push(ms);
			for (let k = 0; k < 2; k++) {
				if (!budget.canRetry(T0 + ms).allowed) break;
				budget.recordRetry(T0 + ms);
				retriesAt.push(ms);
			}
		}
		for (let startMs = 0; startMs + 60_000 <= 300_000; startMs += 1_000) {
			const inMinute = (ms: number) => ms >= startMs && ms < startMs + 60_000;
			const retries = retriesAt.filter(inMinute).length;
			const made = requestsAt.filter(inMinute).length;
			expect(retries, `minute from ${startMs} ms`).toBeLessThanOrEqual(
				Math.max(10, 0.1 * made) + 0.1 * 20, // one bucket's slack: the window is 59–60 s
			);
		}
		expect(retriesAt.length / requestsAt.length).toBeLessThan(0.11);
	});

	it("counts a clock that went backwards in the newest bucket", () => {
		const budget = new RetryBudget();
		requests(budget, 100, T0 + 5_000);
		requests(budget, 100, T0);
		expect(budget.canRetry(T0 + 64_999)).toMatchObject({ allowance: 20 });
		expect(budget.canRetry(T0 + 65_000)).toMatchObject({ allowance: 10 });
	});

	it("restores from a JSON snapshot, ignoring one of another bucket size or garbage", () => {
		const budget = new RetryBudget();
		requests(budget, 200, T0);
		requests(budget, 100, T0 + 2_000);
		retryWhileAllowed(budget, 5, T0 + 2_500);
		const saved = JSON.parse(JSON.stringify(budget.snapshot()));
		const restored = new RetryBudget(DEFAULT_RETRY_BUDGET, saved);
		expect(restored.canRetry(T0 + 3_000)).toEqual(budget.canRetry(T0 + 3_000));
		expect(restored.canRetry(T0 + 60_500)).toEqual({ allowed: true, retries: 5, allowance: 10 });

		const other = new RetryBudget({ ...DEFAULT_RETRY_BUDGET, bucketMs: 500 }, saved);
		expect(other.canRetry(T0 + 3_000)).toMatchObject({ retries: 0, allowance: 10 });
		const garbage = {
			...saved,
			requests: [Number.NaN, -5, "x", Number.POSITIVE_INFINITY],
			retries: null,
		};
		expect(new RetryBudget(DEFAULT_RETRY_BUDGET, garbage).canRetry(T0 + 2_500)).toEqual({
			allowed: true,
			retries: 0,
			allowance: 10,
		});
		expect(new RetryBudget().snapshot()).toEqual(
			JSON.parse(JSON.stringify(new RetryBudget().snapshot())),
		);
	});

	it("refuses options that are programming errors", () => {
		expect(() => new RetryBudget({ ...DEFAULT_RETRY_BUDGET, bucketMs: 0 })).toThrow(RangeError);
		expect(() => new RetryBudget({ ...DEFAULT_RETRY_BUDGET, retryRatio: -0.1 })).toThrow(
			RangeError,
		);
		expect(() => new RetryBudget().canRetry(Number.NaN)).toThrow(RangeError);
	});
});
