// Unit tests of failure classification and jittered exponential backoff, checked against the
// official SDKs' retry tables and schedule.
import { describe, expect, it } from "vitest";
import {
	backoffCeilingMs,
	backoffDelayMs,
	classifyFailure,
	DEFAULT_BACKOFF,
	DEFAULT_MAX_ATTEMPTS,
} from "../../src/core/backoff.ts";
import retryVectors from "../fixtures/providers/retry/sdk_retry_vectors.json";
import { seededRandom } from "../support/seeded-random.ts";

const JUST_BELOW_ONE = 1 - 2 ** -52;

describe("classifyFailure", () => {
	it("retries transient statuses with backoff, and 429 through the pool's pause", () => {
		for (const status of [500, 502, 503, 504]) {
			expect(classifyFailure({ status })).toEqual({
				retryable: true,
				via: "backoff",
				reason: "server_error",
			});
		}
		expect(classifyFailure({ status: 529 })).toEqual({
			retryable: true,
			via: "backoff",
			reason: "overloaded",
		});
		expect(classifyFailure({ status: 408 })).toMatchObject({ retryable: true, via: "backoff" });
		expect(classifyFailure({ status: 409 })).toMatchObject({ retryable: true, via: "backoff" });
		expect(classifyFailure({ status: 429 })).toEqual({
			retryable: true,
			via: "pause",
			reason: "rate_limited",
		});
	});

	it("retries connection errors and first-byte timeouts", () => {
		expect(classifyFailure({ kind: "connection" })).toEqual({
			retryable: true,
			via: "backoff",
			reason: "connection_error",
		});
		expect(classifyFailure({ kind: "timeout" })).toEqual({
			retryable: true,
			via: "backoff",
			reason: "first_byte_timeout",
		});
	});

	it("never retries other 4xx, nor 5xx that are not transient", () => {
		for (const status of [400, 401, 403, 404, 413, 422]) {
			expect(classifyFailure({ status })).toEqual({ retryable: false, reason: "client_error" });
		}
		for (const status of [501, 505]) {
			expect(classifyFailure({ status })).toEqual({
				retryable: false,
				reason: "server_error_final",
			});
		}
	});

	it("lets x-should-retry override the status either way, but not make a success a failure", () => {
		expect(classifyFailure({ status: 400, shouldRetry: true })).toEqual({
			retryable: true,
			via: "backoff",
			reason: "provider_says_retry",
		});
		expect(classifyFailure({ status: 503, shouldRetry: false })).toEqual({
			retryable: false,
			reason: "provider_says_no_retry",
		});
		expect(classifyFailure({ status: 429, shouldRetry: true })).toMatchObject({ via: "pause" });
		expect(classifyFailure({ status: 429, shouldRetry: false })).toMatchObject({
			retryable: false,
		});
		expect(classifyFailure({ status: 200, shouldRetry: true })).toEqual({
			retryable: false,
			reason: "not_a_failure",
		});
	});

	it("agrees with the openai-node status and x-should-retry table", () => {
		for (const { status, headers, retried } of retryVectors.openai_node_status_retry_table.cases) {
			const header = (headers as Record<string, string>)["x-should-retry"];
			const shouldRetry = header === undefined ? undefined : header === "true";
			expect(classifyFailure({ status, shouldRetry }).retryable, `${status} ${header}`).toBe(
				retried,
			);
		}
	});

	it("does not retry what it cannot make sense of", () => {
		for (const status of [undefined, Number.NaN, 0, 99, 600, 503.5]) {
			expect(classifyFailure({ status })).toEqual({ retryable: false, reason: "unknown_failure" });
		}
	});
});

describe("backoffDelayMs", () => {
	it("defaults to the SDKs' three attempts and their 0.5 s to 8 s schedule", () => {
		expect(DEFAULT_MAX_ATTEMPTS).toBe(3);
		// The SDK tables give the nominal sleep for "remaining_retries" out of max_retries.
		const { max_retries, cases } = retryVectors.anthropic_python_parse_retry_after;
		for (const { remaining_retries, retry_after, timeout } of cases) {
			if (retry_after !== "") continue;
			const attempt = max_retries - remaining_retries + 1;
			expect(backoffCeilingMs(attempt, DEFAULT_BACKOFF), `retry ${attempt}`).toBe(timeout * 1_000);
		}
	});

	it("doubles the ceiling per retry from baseMs, capped at capMs", () => {
		const options = { baseMs: 100, capMs: 1_000 };
		const ceilings = [1, 2, 3, 4, 5, 6, 50, 5_000].map((n) => backoffCeilingMs(n, options));
		expect(ceilings).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000]);
		expect(backoffCeilingMs(5_000, { baseMs: 0, capMs: 1_000 })).toBe(0);
		for (const n of [1, 2, 5]) {
			expect(backoffDelayMs(n, options, () => 0)).toBe(0);
			expect(backoffDelayMs(n, options, () => JUST_BELOW_ONE)).toBeCloseTo(
				backoffCeilingMs(n, options),
				6,
			);
		}
	});

	it("draws uniformly over the whole range (full jitter)", () => {
		const random = seededRandom(42);
		const draws = Array.from({ length: 20_000 }, () => backoffDelayMs(3, DEFAULT_BACKOFF, random));
		expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
		expect(Math.max(...draws)).toBeLessThan(2_000);
		const quarters = [0, 0, 0, 0];
		for (const delayMs of draws) {
			const quarter = Math.floor(delayMs / 500);
			quarters[quarter] = (quarters[quarter] ?? 0) + 1;
		}
		for (const count of quarters) expect(Math.abs(count - 5_000)).toBeLessThan(250);
	});

	it("never undercuts the provider's retry-after, even beyond the cap", () => {
		const random = seededRandom(7);
		for (let n = 1; n <= 10; n++) {
			expect(backoffDelayMs(n, { ...DEFAULT_BACKOFF, retryAfterMs: 20_000 }, random)).toBe(20_000);
			expect(
				backoffDelayMs(n, { ...DEFAULT_BACKOFF, retryAfterMs: 300 }, random),
			).toBeGreaterThanOrEqual(300);
		}
		// A retry-after shorter than the draw does not shorten it.
		expect(backoffDelayMs(5, { ...DEFAULT_BACKOFF, retryAfterMs: 0 }, () => 0.5)).toBe(4_000);
	});

	it("ignores a retry-after that is not a delay, and a broken generator", () => {
		for (const retryAfterMs of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
			expect(backoffDelayMs(1, { ...DEFAULT_BACKOFF, retryAfterMs }, () => 0.5)).toBe(250);
		}
		expect(backoffDelayMs(1, DEFAULT_BACKOFF, () => Number.NaN)).toBe(0);
		expect(backoffDelayMs(1, DEFAULT_BACKOFF, () => 7)).toBe(500);
	});

	it("refuses attempts and options that are programming errors", () => {
		for (const attempt of [0, -1, 1.5, Number.NaN]) {
			expect(() => backoffDelayMs(attempt, DEFAULT_BACKOFF, Math.random)).toThrow(RangeError);
		}
		expect(() => backoffCeilingMs(1, { baseMs: -1, capMs: 10 })).toThrow(RangeError);
		expect(() => backoffCeilingMs(1, { baseMs: 1, capMs: Number.NaN })).toThrow(RangeError);
	});
});
