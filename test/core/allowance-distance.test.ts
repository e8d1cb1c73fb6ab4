// An isolate far from its Pool, on a fake clock: every batch takes a round trip of 80 ms (an object
// on another continent). Once its rate is known, a closed loop of 32 callers never finds its
// allowances dry while the pool has room, back to back or sparse, with a few batches a second;
// when the load jumps from 1 caller to 32 (20, 80, 150 ms away) the misses stop within four round
// trips. The loop of batches is the one the Worker runs (src/gateway/allowance-cache.ts).
import { describe, expect, it } from "vitest";
import { ASK_DELAY_MS, PoolAllowanceHolder } from "../../src/core/allowance-holder.ts";
import { DEFAULT_BACKOFF } from "../../src/core/backoff.ts";
import { MinHeap } from "../../src/core/min-heap.ts";
import type { AllowanceBatch, AllowanceScope } from "../../src/core/pool-allowances.ts";
import { PoolState } from "../../src/core/pool-state.ts";
import { options } from "./build.ts";

const SCOPE: AllowanceScope = { tenant: "acme", model: "gpt-test" };
const WINDOW_MS = 1_000;
const TOKENS = 20;
/** A pool far above the load: 100 k requests a second. */
const ROOMY = {
	requestsPerMinute: 6_000_000,
	burstRequests: 6_000_000,
	tokensPerMinute: 1e12,
	burstTokens: 1e12,
	maxConcurrent: 100_000,
};

interface Load {
	/** Callers in the closed loop over time: [fromMs, callers]. */
	callers: [number, number][];
	/** How long a request holds its slot once admitted (the provider's answer). */
	holdMs: number;
	/** A caller's pause between requests (the bench interleaves other variants). */
	thinkMs: number;
	endMs: number;
	roundTripMs: number;
}

/** Runs the load; returns the times (ms) of the requests the allowances did not cover. */
function simulate(load: Load): { misses: number[]; admitted: number; batches: number } {
	const { limits, ...scheduler } = options(ROOMY);
	const pool = new PoolState({
		scheduler,
		configuredLimits: limits,
		limitsFor: () => limits,
		maxAttempts: 3,
		backoff: DEFAULT_BACKOFF,
		allowances: { spendWindowMs: WINDOW_MS, reclaimAfterMs: 60_000 },
	});
	const holder = new PoolAllowanceHolder("isolate", WINDOW_MS);
	const events = new MinHeap<{ atMs: number; order: number; run: () => void }>(
		(event) => event.atMs + event.order / 1e9,
	);
	let order = 0;
	let nowMs = 0;
	const at = (atMs: number, run: () => void) => events.push({ atMs, order: order++, run });
	const misses: number[] = [];
	let admitted = 0;
	let tickets = 0;
	let loopRunning = false;
	let batches = 0;

	// The Worker's loop of batches: nap, send what is due, wait for the answer, again; an ask made
	// while it naps longer goes by itself (src/gateway/allowance-cache.ts).
	let loopWakeMs = 0;
	let askingSoon = false;
	const send = (batch: AllowanceBatch, then: () => void) => {
		const sentAtMs = nowMs;
		batches++;
		at(nowMs + load.roundTripMs / 2, () => {
			const answer = { ...pool.settleAllowances(batch, nowMs), nowMs };
			at(nowMs + load.roundTripMs / 2, () => {
				holder.answered(batch, answer, sentAtMs, nowMs);
				then();
			});
		});
	};
	const loop = () => {
		const napMs = holder.napMs(nowMs);
		if (napMs === undefined) {
			loopRunning = false;
			return;
		}
		loopWakeMs = nowMs + napMs;
		at(loopWakeMs, () => {
			const batch = holder.takeBatch(nowMs);
			if (batch) send(batch, loop);
			else loop();
		});
	};
	const startLoop = () => {
		if (holder.asking && loopRunning && loopWakeMs > nowMs + ASK_DELAY_MS) {
			if (askingSoon) return;
			askingSoon = true;
			at(nowMs + ASK_DELAY_MS, () => {
				askingSoon = false;
				const batch = holder.asking ? holder.takeBatch(nowMs) : undefined;
				if (batch) send(batch, () => {});
			});
			return;
		}
		if (loopRunning || holder.napMs(nowMs) === undefined) return;
		loopRunning = true;
		loop();
	};

	const callersAt = (ms: number) =>
		load.callers.filter(([fromMs]) => fromMs <= ms).at(-1)?.[1] ?? 0;
	const request = (caller: number) => {
		if (nowMs >= load.endMs || caller >= callersAt(nowMs)) return;
		const ticketId = `r${tickets++}`;
		const spend = holder.admit(SCOPE, TOKENS, nowMs);
		startLoop();
		admitted++;
		const next = () => at(nowMs + load.thinkMs, () => request(caller));
		if (!spend) {
			// To the Pool and back, then sent: the caller waits a round trip more.
			misses.push(nowMs);
			at(nowMs + load.roundTripMs + load.holdMs, next);
			return;
		}
		at(nowMs + load.holdMs, () => {
			holder.ended(
				spend,
				{ ticketId, scope: SCOPE, tokens: TOKENS, providerAnswered: true },
				nowMs,
			);
			startLoop();
			next();
		});
	};
	for (const [fromMs, callers] of load.callers) {
		const before = callersAt(fromMs - 1);
		for (let caller = before; caller < callers; caller++) at(fromMs, () => request(caller));
	}
	for (let event = events.pop(); event; event = events.pop()) {
		nowMs = event.atMs;
		event.run();
	}
	return { misses, admitted, batches };
}

describe("an isolate 80 ms from its Pool", () => {
	it("never runs dry at concurrency 32 once its rate is known, back to back or sparse", () => {
		for (const thinkMs of [0, 90]) {
			const { misses, admitted, batches } = simulate({
				callers: [[0, 32]],
				holdMs: 5,
				thinkMs,
				endMs: 20_000,
				roundTripMs: 80,
			});
			expect(admitted).toBeGreaterThan(thinkMs === 0 ? 100_000 : 5_000);
			// Only the first requests, before the first grants arrive and while the rate is learned.
			expect(misses.filter((ms) => ms >= 600)).toEqual([]);
			// Ended requests are reported together: a few batches a second, not one per request.
			expect(batches).toBeLessThan(20 * 15);
		}
	});

	it("catches up within four round trips when the load jumps from 1 caller to 32", () => {
		for (const roundTripMs of [20, 80, 150]) {
			const { misses } = simulate({
				callers: [
					[0, 1],
					[10_000, 32],
				],
				holdMs: 5,
				thinkMs: 90,
				endMs: 20_000,
				roundTripMs,
			});
			expect(misses.filter((ms) => ms >= 1_000 && ms < 10_000)).toEqual([]);
			expect(misses.filter((ms) => ms >= 10_000 + 4 * roundTripMs + 100)).toEqual([]);
		}
	});

	it("sends an ask made while a batch is out, even when that batch's answer leaves no grant open", () => {
		const holder = new PoolAllowanceHolder("isolate", WINDOW_MS);
		holder.admit(SCOPE, TOKENS, 0);
		const first = holder.takeBatch(5);
		const grant = {
			id: "g",
			holder: "isolate",
			scope: SCOPE,
			amount: { requests: 4, tokens: 80, slots: 3 },
			spendUntilMs: 1_045,
			reclaimAtMs: 61_045,
		};
		holder.answered(first as AllowanceBatch, { grants: [grant], open: true, nowMs: 45 }, 5, 85);
		// The grant's window is over: its batch gives the rest back while a request finds none.
		const closing = holder.takeBatch(1_010);
		expect(closing?.reports[0]?.final).toBe(true);
		expect(holder.admit(SCOPE, TOKENS, 1_020)).toBe(undefined);
		holder.answered(
			closing as AllowanceBatch,
			{ grants: [], open: true, nowMs: 1_050 },
			1_010,
			1_090,
		);
		expect(holder.napMs(1_090)).toBe(5);
		expect(holder.takeBatch(1_095)?.asks).toHaveLength(1);
	});
});
