// Acceptance under load on a fake clock: minutes of overload must admit what the limits allow,
// no more and, once demand exceeds supply, no less.
import { describe, expect, it } from "vitest";
import { Scheduler } from "../../src/core/scheduler.ts";
import { ask, options } from "./build.ts";

interface Admission {
	atMs: number;
	tokens: number;
}

interface Scenario {
	name: string;
	arrivalEveryMs: number;
	tokensPerAsk: number;
	/** Which limits must be used to the full (the others are checked only from above). */
	binding: { requests: boolean; tokens: boolean };
	/** A stretch with no arrivals, in which the buckets refill up to their capacity. */
	quiet?: { fromMs: number; toMs: number };
}

const limits = {
	requestsPerMinute: 3_000,
	tokensPerMinute: 300_000,
	burstRequests: 500, // a sixth of a minute
	burstTokens: 50_000,
	maxConcurrent: 1_000,
};
const requestsPerMs = limits.requestsPerMinute / 60_000;
const tokensPerMs = limits.tokensPerMinute / 60_000;
const durationMs = 5 * 60_000;
const latencyMs = 250;
const maxWaitMs = 10_000;
const startMs = 1_763_000_000_000; // epoch-sized, as Date.now() gives

/** Drives one pool the way its Durable Object would: submits, releases, and ticks only when the
 * alarm it set for nextWakeMs comes due. */
function simulate({ arrivalEveryMs, tokensPerAsk, quiet }: Scenario) {
	const scheduler = new Scheduler(options(limits, { leaseTtlMs: 60_000, maxQueueLength: 2_000 }));
	const admissions: Admission[] = [];
	const releases: { atMs: number; ticketId: string }[] = [];
	const rejections = new Map<string, number>();
	let nextRelease = 0;
	let nextArrivalMs = startMs;
	let arrivals = 0;
	const admit = (lease: { ticketId: string; tokens: number; admittedMs: number }) => {
		admissions.push({ atMs: lease.admittedMs - startMs, tokens: lease.tokens });
		releases.push({ atMs: lease.admittedMs + latencyMs, ticketId: lease.ticketId });
	};
	const reject = (reason: string) => rejections.set(reason, (rejections.get(reason) ?? 0) + 1);

	let steps = 0;
	for (let nowMs = startMs; nowMs <= startMs + durationMs; ) {
		if (++steps > 1_000_000) throw new Error(`no progress at ${nowMs - startMs} ms`);
		for (let release = releases[nextRelease]; release && release.atMs <= nowMs; ) {
			expect(scheduler.release(release.ticketId, tokensPerAsk, nowMs)).toBe(true);
			release = releases[++nextRelease];
		}
		if (scheduler.nextWakeMs(nowMs) === nowMs) {
			for (const { result } of scheduler.tick(nowMs)) {
				if (result.kind === "admitted") admit(result.lease);
				else reject(result.reason);
			}
		}
		for (; nextArrivalMs <= nowMs; nextArrivalMs += arrivalEveryMs) {
			const atMs = nextArrivalMs - startMs;
			if (quiet && atMs >= quiet.fromMs && atMs < quiet.toMs) continue;
			arrivals++;
			const decision = scheduler.submit(
				ask({ tokens: tokensPerAsk, deadlineMs: nowMs + maxWaitMs }),
				nowMs,
			);
			if (decision.kind === "admitted") admit(decision.lease);
			if (decision.kind === "rejected") reject(decision.reason);
		}
		nowMs = Math.min(
			nextArrivalMs,
			releases[nextRelease]?.atMs ?? Number.POSITIVE_INFINITY,
			scheduler.nextWakeMs(nowMs) ?? Number.POSITIVE_INFINITY,
		);
	}
	return {
		admissions,
		rejections,
		arrivals,
		queued: scheduler.status(startMs + durationMs).queued,
	};
}

describe("five minutes at five times the limit", () => {
	const scenarios: Scenario[] = [
		{
			name: "requests and tokens both binding",
			arrivalEveryMs: 4,
			tokensPerAsk: 100,
			binding: { requests: true, tokens: true },
		},
		{
			name: "tokens binding",
			arrivalEveryMs: 10,
			tokensPerAsk: 250,
			binding: { requests: false, tokens: true },
		},
	];

	it.each(scenarios)("admits within [0.999 × ideal, ideal + 1] with $name", (scenario) => {
		const { admissions, rejections, arrivals } = simulate(scenario);
		expect(arrivals * scenario.tokensPerAsk).toBeGreaterThan(5 * limits.tokensPerMinute * 4.9);
		// The load was shed by the deadline estimate, not by letting waiters time out in the queue.
		expect(rejections.get("deadline")).toBeGreaterThan(arrivals / 2);

		const idealRequests = (atMs: number) => limits.burstRequests + requestsPerMs * atMs;
		const idealTokens = (atMs: number) => limits.burstTokens + tokensPerMs * atMs;
		const offered = (atMs: number) => Math.floor(atMs / scenario.arrivalEveryMs) + 1;
		// Check at every admission and at every whole second: the points where a count can be
		// compared without the granularity of one request.
		const checkpoints = [
			...admissions.map(({ atMs }) => atMs),
			...Array.from({ length: durationMs / 1_000 + 1 }, (_, second) => second * 1_000),
		].sort((a, b) => a - b);
		let requests = 0;
		let tokens = 0;
		let next = 0;
		for (const atMs of checkpoints) {
			for (let admission = admissions[next]; admission && admission.atMs <= atMs; ) {
				requests++;
				tokens += admission.tokens;
				admission = admissions[++next];
			}
			expect(requests).toBeLessThanOrEqual(idealRequests(atMs) + 1);
			expect(tokens).toBeLessThanOrEqual(idealTokens(atMs) + 1);
			// Before demand exceeds supply, everything offered is admitted at once.
			if (scenario.binding.requests) {
				expect(requests).toBeGreaterThanOrEqual(
					0.999 * Math.min(idealRequests(atMs), offered(atMs)),
				);
			}
			if (scenario.binding.tokens) {
				expect(tokens).toBeGreaterThanOrEqual(
					0.999 * Math.min(idealTokens(atMs), offered(atMs) * scenario.tokensPerAsk),
				);
			}
		}
		expect(checkpoints.length).toBeGreaterThan(5_000);
	});

	const withQuietMinute: Scenario = {
		name: "a quiet minute in the middle",
		arrivalEveryMs: 4,
		tokensPerAsk: 100,
		binding: { requests: false, tokens: false },
		quiet: { fromMs: 120_000, toMs: 180_000 },
	};

	it.each([...scenarios, withQuietMinute])(
		"never admits more than limit + burst in any 60 s window with $name",
		(scenario) => {
			const { admissions } = simulate(scenario);
			let first = 0;
			let windowTokens = 0;
			for (let last = 0; last < admissions.length; last++) {
				const current = admissions[last] as Admission;
				windowTokens += current.tokens;
				for (let oldest = admissions[first]; oldest && oldest.atMs <= current.atMs - 60_000; ) {
					windowTokens -= oldest.tokens;
					oldest = admissions[++first];
				}
				expect(last - first + 1).toBeLessThanOrEqual(
					limits.requestsPerMinute + limits.burstRequests,
				);
				expect(windowTokens).toBeLessThanOrEqual(limits.tokensPerMinute + limits.burstTokens);
			}
		},
	);
});

describe("a thousand asks at the same instant", () => {
	it("admit exactly the request burst and queue the rest", () => {
		const scheduler = new Scheduler(options({ burstRequests: 100, burstTokens: 1_000_000 }));
		const kinds = Array.from({ length: 1_000 }, () => scheduler.submit(ask({ tokens: 1 }), 0).kind);
		expect(kinds.filter((kind) => kind === "admitted")).toHaveLength(100);
		expect(kinds.filter((kind) => kind === "queued")).toHaveLength(900);
		expect(scheduler.tick(0)).toEqual([]);
	});

	it("admit exactly what the token burst holds and queue the rest", () => {
		const scheduler = new Scheduler(options({ burstRequests: 1_000, burstTokens: 10_000 }));
		const kinds = Array.from(
			{ length: 1_000 },
			() => scheduler.submit(ask({ tokens: 100 }), 0).kind,
		);
		expect(kinds.filter((kind) => kind === "admitted")).toHaveLength(100);
		expect(kinds.filter((kind) => kind === "queued")).toHaveLength(900);
		expect(scheduler.tick(0)).toEqual([]);
	});
});
