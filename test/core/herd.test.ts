// Herd simulation on a fake clock: 100 callers against a provider that answers 503 for 10 s, as
// independent clients with plain exponential backoff, and through one pool built from the core units.
import { describe, expect, it } from "vitest";
import {
	backoffDelayMs,
	classifyFailure,
	DEFAULT_BACKOFF,
	DEFAULT_MAX_ATTEMPTS,
} from "../../src/core/backoff.ts";
import { CircuitBreaker } from "../../src/core/circuit-breaker.ts";
import { RetryBudget } from "../../src/core/retry-budget.ts";
import { seededRandom } from "../support/seeded-random.ts";

/** 100 callers, each starting a request every second (100 a second), staggered by 10 ms. */
const CALLERS = 100;
const CADENCE_MS = 1_000;
const STAGGER_MS = 10;
/** Every answer, 200 or 503, takes this long. */
const LATENCY_MS = 50;
const OUTAGE_MS = 10_000;
const OUTAGE_FROM_MS = 5_000;
const END_MS = 25_000;
/** The naive clients: no jitter, 100 ms then 200 ms, the same three attempts as the pool. */
const NAIVE_BASE_MS = 100;

/** A fake clock: callbacks by whole millisecond, run in order; a callback may schedule more. */
class Clock {
	readonly #due = new Map<number, (() => void)[]>();

	at(atMs: number, callback: () => void): void {
		const ms = Math.ceil(atMs);
		const list = this.#due.get(ms);
		if (list) list.push(callback);
		else this.#due.set(ms, [callback]);
	}

	run(untilMs: number): void {
		for (let ms = 0; ms <= untilMs; ms++) {
			const list = this.#due.get(ms);
			if (!list) continue;
			for (let i = 0; i < list.length; i++) list[i]?.();
			this.#due.delete(ms);
		}
	}
}

/** The simulated world: the fake clock, and the provider that every upstream attempt reaches. */
interface World {
	clock: Clock;
	send(nowMs: number, answered: (ok: boolean, atMs: number) => void): void;
}

/** Runs one caller's request from startMs, and calls done(ok, atMs) once it is over. */
type Strategy = (world: World, startMs: number, done: (ok: boolean, atMs: number) => void) => void;

interface Run {
	attemptsDuringOutage: number;
	requests: { startMs: number; ok: boolean }[];
	/** From the provider's recovery to the first request from which every request succeeds. */
	recoveryMs: number;
}

function simulate(strategy: Strategy, outageMs = OUTAGE_MS): Run {
	const outage = { fromMs: OUTAGE_FROM_MS, toMs: OUTAGE_FROM_MS + outageMs };
	const clock = new Clock();
	let attemptsDuringOutage = 0;
	const requests: Run["requests"] = [];
	const world: World = {
		clock,
		send(nowMs, answered) {
			const down = nowMs >= outage.fromMs && nowMs < outage.toMs;
			if (down) attemptsDuringOutage++;
			clock.at(nowMs + LATENCY_MS, () => answered(!down, nowMs + LATENCY_MS));
		},
	};
	const startRequest = (startMs: number) => {
		strategy(world, startMs, (ok, doneMs) => {
			requests.push({ startMs, ok });
			let nextMs = startMs + CADENCE_MS;
			while (nextMs < doneMs) nextMs += CADENCE_MS; // a caller still retrying skips its turn
			if (nextMs < END_MS) clock.at(nextMs, () => startRequest(nextMs));
		});
	};
	for (let caller = 0; caller < CALLERS; caller++) {
		clock.at(caller * STAGGER_MS, () => startRequest(caller * STAGGER_MS));
	}
	clock.run(END_MS + 60_000);

	const lastFailedStartMs = Math.max(...requests.filter((r) => !r.ok).map((r) => r.startMs));
	const recoveredAtMs = Math.min(
		...requests.filter((r) => r.startMs > lastFailedStartMs).map((r) => r.startMs),
	);
	return {
		attemptsDuringOutage,
		requests,
		recoveryMs: Math.max(0, recoveredAtMs - outage.toMs),
	};
}

/** (a) An independent client: three attempts, 100 ms then 200 ms apart, no jitter. */
const naiveClient: Strategy = (world, startMs, done) => {
	const attempt = (n: number, nowMs: number) => {
		world.send(nowMs, (ok, atMs) => {
			if (ok || n >= DEFAULT_MAX_ATTEMPTS) return done(ok, atMs);
			const retryAtMs = atMs + NAIVE_BASE_MS * 2 ** (n - 1);
			world.clock.at(retryAtMs, () => attempt(n + 1, retryAtMs));
		});
	};
	attempt(1, startMs);
};

/**
 * (b) One pool for everyone, its admission reduced to the resilience units: the breaker decides
 * whether an attempt goes at all (refused: the caller gets its 503 and retry-after at once), a
 * failed attempt is retried after a jittered backoff only while the retry budget allows.
 */
function tollboothPool(random: () => number, withBreaker = true) {
	const breaker = new CircuitBreaker();
	const budget = new RetryBudget();
	let retries = 0;
	let firstSends = 0;
	const strategy: Strategy = (world, startMs, done) => {
		const attempt = (n: number, nowMs: number) => {
			if (withBreaker && !breaker.allow(nowMs).allowed) return done(false, nowMs);
			if (n === 1) {
				budget.recordRequest(nowMs);
				firstSends++;
			}
			world.send(nowMs, (ok, atMs) => {
				if (ok) {
					breaker.recordSuccess(atMs);
					return done(true, atMs);
				}
				breaker.recordFailure(atMs);
				const failure = classifyFailure({ status: 503 });
				const retry =
					failure.retryable &&
					failure.via === "backoff" &&
					n < DEFAULT_MAX_ATTEMPTS &&
					budget.canRetry(atMs).allowed;
				if (!retry) return done(false, atMs);
				budget.recordRetry(atMs);
				retries++;
				const retryAtMs = atMs + backoffDelayMs(n, DEFAULT_BACKOFF, random);
				world.clock.at(retryAtMs, () => attempt(n + 1, Math.ceil(retryAtMs)));
			});
		};
		attempt(1, startMs);
	};
	return { strategy, counts: () => ({ retries, firstSends }) };
}

describe("thundering herd: 100 callers, provider down (503) for 10 s", () => {
	// Seeds after the first also lengthen the outage by 110 ms each, so that the provider recovers
	// at other points of the breaker's 500 ms probe cycle.
	it.each([1, 2, 3, 4, 5])(
		"tollbooth halves the upstream load and recovers within 1 s (seed %i)",
		(seed) => {
			const outageMs = OUTAGE_MS + (seed - 1) * 110;
			const naive = simulate(naiveClient, outageMs);
			const tollbooth = simulate(tollboothPool(seededRandom(seed)).strategy, outageMs);
			console.log(
				`herd seed ${seed}: upstream attempts during the ${outageMs / 1_000} s outage: independent clients ${naive.attemptsDuringOutage}, tollbooth ${tollbooth.attemptsDuringOutage}; back to full rate after the provider recovered: independent ${naive.recoveryMs} ms, tollbooth ${tollbooth.recoveryMs} ms`,
			);
			expect(tollbooth.attemptsDuringOutage).toBeLessThanOrEqual(naive.attemptsDuringOutage / 2);
			// Far less, in fact: once the breaker is open only its probes go, about two a second, so
			// the whole outage costs the provider less than one second of normal traffic.
			expect(tollbooth.attemptsDuringOutage).toBeLessThan(CALLERS);
			expect(tollbooth.recoveryMs).toBeLessThanOrEqual(1_000);
			// Full rate: from then on every caller's request goes through, one per caller per second.
			const recoveredAtMs = OUTAGE_FROM_MS + outageMs + tollbooth.recoveryMs;
			const nextSecond = tollbooth.requests.filter(
				(r) => r.startMs >= recoveredAtMs && r.startMs < recoveredAtMs + CADENCE_MS,
			);
			expect(nextSecond.length).toBe(CALLERS);
			expect(nextSecond.every((r) => r.ok)).toBe(true);
		},
	);

	it("without the breaker, the budget alone keeps retries to a tenth of the requests", () => {
		const pool = tollboothPool(seededRandom(1), false);
		const run = simulate(pool.strategy);
		const naive = simulate(naiveClient);
		const { retries, firstSends } = pool.counts();
		console.log(
			`herd, budget and backoff only: upstream attempts during the outage ${run.attemptsDuringOutage} (independent clients ${naive.attemptsDuringOutage}); ${retries} retries for ${firstSends} requests`,
		);
		expect(retries).toBeLessThanOrEqual(0.1 * firstSends + 10);
		expect(run.attemptsDuringOutage).toBeLessThanOrEqual(naive.attemptsDuringOutage / 2);
	});
});
