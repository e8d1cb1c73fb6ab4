// Sliding-window limits on a fake clock: a pool (or a model) that declares
// algorithm "sliding-window" never admits more than its limit, in requests or in tokens, in any
// window of windowMs, through minutes of overload at three times the limit, with the same queue,
// priorities, reservations and reconciliation as buckets; and it admits the limit, no less.
import { describe, expect, it } from "vitest";
import type { RateLimits } from "../../src/core/limits.ts";
import { Scheduler } from "../../src/core/scheduler.ts";
import { SlidingWindow } from "../../src/core/sliding-window.ts";
import { seededRandom } from "../support/seeded-random.ts";
import { ask, options } from "./build.ts";
import { type Arrival, drive } from "./drive.ts";

const windowLimits = (windowMs: number): RateLimits => ({
	requestsPerMinute: 600,
	tokensPerMinute: 60_000,
	burstRequests: 1,
	burstTokens: 1,
	algorithm: "sliding-window",
	windowMs,
});

/** 30 a second (3× 600 a minute) for durationMs, tokens 20–200 (3.3× the token limit), mixed classes. */
function overload(durationMs: number, seed: number, model = "gpt-test"): Arrival[] {
	const random = seededRandom(seed);
	const arrivals: Arrival[] = [];
	for (let atMs = 0, i = 0; atMs < durationMs; i++) {
		atMs += Math.ceil((-Math.log(1 - random()) * 1000) / 30);
		arrivals.push({
			atMs,
			ask: ask({
				ticketId: `w${seed}-${i}`,
				model,
				priority: random() < 0.2 ? "high" : "low",
				tokens: 20 + Math.floor(180 * random()),
				deadlineMs: atMs + 1e9,
			}),
		});
	}
	return arrivals;
}

interface Used {
	atMs: number;
	reserved: number;
	actual: number;
}

/** The most any window [t, t + windowMs) holds, over windows starting at each admission. */
function busiestWindow(used: Used[], windowMs: number) {
	const sorted = [...used].sort((a, b) => a.atMs - b.atMs);
	let most = { requests: 0, reserved: 0, actual: 0 };
	let end = 0;
	let requests = 0;
	let reserved = 0;
	let actual = 0;
	for (let start = 0; start < sorted.length; start++) {
		const from = sorted[start] as Used;
		for (; end < sorted.length && (sorted[end] as Used).atMs < from.atMs + windowMs; end++) {
			requests++;
			reserved += (sorted[end] as Used).reserved;
			actual += (sorted[end] as Used).actual;
		}
		most = {
			requests: Math.max(most.requests, requests),
			reserved: Math.max(most.reserved, reserved),
			actual: Math.max(most.actual, actual),
		};
		requests--;
		reserved -= from.reserved;
		actual -= from.actual;
	}
	return most;
}

/** `usedShare`: each request really uses this share of its reservation; the rest is refunded. */
function run(scheduler: Scheduler, arrivals: Arrival[], untilMs: number, usedShare = 1) {
	const actual = new Map(
		arrivals.map(({ ask }) => [ask.ticketId, Math.floor(ask.tokens * usedShare)]),
	);
	const stories = drive(scheduler, arrivals, {
		untilMs,
		latencyMs: 300,
		actualTokens: (asked) => actual.get(asked.ticketId),
	});
	const used: Used[] = [];
	for (const story of stories.values()) {
		if (story.answer?.kind !== "admitted") continue;
		used.push({
			atMs: story.answer.atMs,
			reserved: story.ask.tokens,
			actual: actual.get(story.ask.ticketId) ?? 0,
		});
	}
	return used;
}

describe("sliding window", () => {
	it.each([
		{ windowMs: 10_000, seed: 1, usedShare: 1 },
		{ windowMs: 10_000, seed: 2, usedShare: 0.6 },
		{ windowMs: 60_000, seed: 3, usedShare: 1 },
	])(
		"never admits more than the limit in any $windowMs ms window of a minute at 3× (using $usedShare of estimates), and admits the limit",
		({ windowMs, seed, usedShare }) => {
			const limits = windowLimits(windowMs);
			const scheduler = new Scheduler(
				options(limits, {
					maxWaitMsByPriority: { critical: 1e9, high: 1e9, normal: 1e9, low: 1e9 },
				}),
			);
			const durationMs = 60_000 + windowMs;
			const used = run(scheduler, overload(durationMs, seed), durationMs + 5 * windowMs, usedShare);
			const perWindow = {
				requests: (600 * windowMs) / 60_000,
				tokens: (60_000 * windowMs) / 60_000,
			};
			const most = busiestWindow(used, windowMs);
			expect(most.requests).toBeLessThanOrEqual(perWindow.requests);
			// What the provider counts: the tokens really used (all that was reserved, without refunds).
			expect(most.actual).toBeLessThanOrEqual(perWindow.tokens);
			// No less: the limit that binds (tokens, or requests once refunds shrink each one) is used to
			// within a slot (1%) and the refunds (which come back only when a request ends).
			const admitted = used.filter(({ atMs }) => atMs < durationMs);
			const windows = durationMs / windowMs;
			const tokenShare =
				admitted.reduce((sum, { actual }) => sum + actual, 0) / (perWindow.tokens * windows);
			const requestShare = admitted.length / (perWindow.requests * windows);
			expect(Math.max(tokenShare, requestShare)).toBeGreaterThanOrEqual(0.95);
			// Memory: at most one entry per slot of the window, however many requests.
			const state = scheduler.snapshot().pool.window;
			expect(state?.entries.length).toBeLessThanOrEqual(101);
		},
	);

	it("limits one model by its own window on top of the pool's buckets", () => {
		const scheduler = new Scheduler(
			options(
				{
					requestsPerMinute: 6_000,
					tokensPerMinute: 1e9,
					burstRequests: 1_000,
					burstTokens: 1e9,
					models: { "gpt-window": windowLimits(10_000) },
				},
				{ maxWaitMsByPriority: { critical: 1e9, high: 1e9, normal: 1e9, low: 1e9 } },
			),
		);
		const used = run(scheduler, overload(60_000, 3, "gpt-window"), 120_000);
		const most = busiestWindow(used, 10_000);
		expect(most.requests).toBeLessThanOrEqual(100);
		expect(most.actual).toBeLessThanOrEqual(10_000);
		expect(used.length).toBeGreaterThan(300);
	});

	it("reconciles in the slot the request was admitted in, and forgets slots that left the window", () => {
		const window = new SlidingWindow({
			requestsPerMinute: 60,
			tokensPerMinute: 6_000,
			windowMs: 10_000,
		});
		// 10 requests and 1,000 tokens a window.
		window.take(900, 0);
		expect(window.fits(100, 1_000)).toBe(true);
		expect(window.fits(101, 1_000)).toBe(false);
		// The request used only 400: 500 come back to its slot at once.
		window.chargeTokens(-500, 2_000, 0);
		expect(window.fits(600, 2_000)).toBe(true);
		expect(window.fits(601, 2_000)).toBe(false);
		// The slot [0, 100) leaves the window when the window has passed its end.
		expect(window.waitMs(1, 1_000, 2_000)).toBe(8_100);
		expect(window.fits(1_000, 10_099)).toBe(false);
		expect(window.fits(1_000, 10_100)).toBe(true);
		// A refund for a slot that already left changes nothing.
		window.take(1_000, 10_100);
		window.chargeTokens(-400, 10_200, 0);
		expect(window.fits(1, 10_200)).toBe(false);
		// Requests bind too: ten of them, then the eleventh waits for the first's slot to leave.
		const requests = new SlidingWindow({ requestsPerMinute: 60, windowMs: 10_000 });
		for (let i = 0; i < 10; i++) requests.take(0, i * 500);
		expect(requests.fits(0, 5_000)).toBe(false);
		expect(requests.waitMs(1, 0, 5_000)).toBe(5_100);
		// 25 more: the 5th of them when the 5th slot leaves (at 12,100), the 25th two windows later.
		expect(requests.waitMs(25, 0, 5_000)).toBe(7_100 + 2 * 10_000);
	});
});
