// Honest retry-after on a fake clock: a burst far beyond the pool turns callers away (deadline,
// queue full, shed, expired); each comes back once after its retryAfterMs and must find room at
// once, or within a tenth of the time it was told to stay away. No retry-after can foresee traffic
// that has not arrived yet: the burst is over before the first caller is due back.
import { describe, expect, it } from "vitest";
import { PRIORITIES } from "../../src/core/priority.ts";
import { Scheduler, type SchedulerOptions } from "../../src/core/scheduler.ts";
import { seededRandom as random } from "../support/seeded-random.ts";
import { ask, options } from "./build.ts";
import { type Arrival, drive, type Story } from "./drive.ts";

interface Return {
	reason: string;
	retryAfterMs: number;
	waitedMs: number;
	answer: string;
}

/** A burst of `count` asks in the first `spreadMs`; everyone turned away comes back once. */
function burstAndReturn(
	rest: Partial<SchedulerOptions>,
	count: number,
	spreadMs: number,
	seed: number,
) {
	const scheduler = new Scheduler(
		options(
			{ requestsPerMinute: 600, burstRequests: 10, tokensPerMinute: 600_000 },
			{
				maxQueueLength: 200,
				maxQueuePerTenant: 120,
				maxWaitMsByPriority: { critical: 10_000, high: 20_000, normal: 40_000, low: 60_000 },
				...rest,
			},
		),
	);
	const next = random(seed);
	const arrivals: Arrival[] = Array.from({ length: count }, (_, i) => {
		const atMs = Math.floor(next() * spreadMs);
		return {
			atMs,
			ask: ask({
				ticketId: `first${i}`,
				tenant: ["a", "b", "c"][i % 3],
				priority: PRIORITIES[Math.floor(next() * 4)],
				tokens: 10 + Math.floor(next() * 90),
				// Some callers will not wait as long as their class may (x-max-wait-ms).
				deadlineMs: atMs + (next() < 0.5 ? 5_000 + Math.floor(next() * 55_000) : 1e9),
			}),
		};
	});
	const turnedAway = new Map<string, Story>();
	const returns: Return[] = [];
	drive(scheduler, arrivals, {
		untilMs: 3_600_000,
		latencyMs: 1_000,
		answered: (story) => {
			const { answer } = story;
			if (!answer) return undefined;
			const first = turnedAway.get(story.ask.ticketId);
			if (first?.answer) {
				const expired = first.decision.kind === "queued" && first.answer.reason === "deadline";
				returns.push({
					reason: expired ? "expired" : (first.answer.reason ?? ""),
					retryAfterMs: first.answer.retryAfterMs ?? 0,
					waitedMs: answer.atMs - story.arrivedMs,
					answer: answer.kind === "admitted" ? "admitted" : (answer.reason ?? ""),
				});
				return undefined;
			}
			if (answer.kind !== "rejected") return undefined;
			const returning = ask({
				...story.ask,
				ticketId: `back-${story.ask.ticketId}`,
				deadlineMs: answer.atMs + (answer.retryAfterMs ?? 0) + 60_000,
			});
			turnedAway.set(returning.ticketId, story);
			return { atMs: answer.atMs + (answer.retryAfterMs ?? 0), ask: returning };
		},
	});
	return { returns, turnedAway: turnedAway.size };
}

describe("retry-after", () => {
	it.each([
		{ name: "one pool-wide queue", rest: {}, seed: 1 },
		{
			name: "weighted tenants, one with limits of its own",
			seed: 2,
			rest: {
				tenants: { a: { weight: 3 }, c: { weight: 1, requestsPerMinute: 120 } },
			},
		},
	])("sends every caller turned away back when there is room: $name", ({ rest, seed }) => {
		const { returns, turnedAway } = burstAndReturn(rest, 3_000, 200, seed);
		expect(turnedAway).toBeGreaterThan(2_000);
		expect(returns).toHaveLength(turnedAway);
		const onTime = (back: Return) =>
			back.answer === "admitted" && back.waitedMs <= 0.1 * back.retryAfterMs;
		for (const reason of ["shed", "expired", "queue_full"]) {
			const backs = returns.filter((back) => back.reason === reason);
			expect(backs.length, reason).toBeGreaterThan(10);
			// All of them found room at once.
			expect(
				backs.filter((back) => back.waitedMs > 0),
				reason,
			).toEqual([]);
			expect(backs.every(onTime), reason).toBe(true);
		}
		// Told at once: a few were told before the burst was over, and the asks queued after them
		// (which no retry-after can foresee) went first. Still, 99% found room in time.
		const told = returns.filter((back) => back.reason === "deadline");
		expect(told.length).toBeGreaterThan(1_000);
		expect(told.filter(onTime).length).toBeGreaterThanOrEqual(0.99 * told.length);
		// Every caller was told to stay away until the burst was over.
		expect(Math.min(...returns.map(({ retryAfterMs }) => retryAfterMs))).toBeGreaterThan(200);
	});
});
