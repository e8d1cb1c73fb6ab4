// Drives a Scheduler on a fake clock the way the Pool object does: submits arrivals when they
// come, releases leases after a latency, and ticks only when nextWakeMs comes due.
import { MinHeap } from "../../src/core/min-heap.ts";
import type { Ask, Decision, Outcome, Scheduler } from "../../src/core/scheduler.ts";

export interface Arrival {
	atMs: number;
	ask: Ask;
}

/** Every ask's story: when it came, and how and when it was answered. */
export interface Story {
	ask: Ask;
	arrivedMs: number;
	/** The decision at submit. */
	decision: Decision;
	/** The final answer, at submit or later from tick; undefined while it waits. */
	answer?: { kind: "admitted" | "rejected"; reason?: string; atMs: number; retryAfterMs?: number };
}

export interface DriveOptions {
	untilMs: number;
	/** Time a lease is held before its release. */
	latencyMs: number;
	/** The tokens a lease really used, reconciled at its release (default: its reservation). */
	actualTokens?: (ask: Ask) => number | undefined;
	/** Called after each step; the place for invariants. */
	observe?: (nowMs: number) => void;
	/** Called for each final answer; may return a later arrival (a caller coming back). */
	answered?: (story: Story) => Arrival | undefined;
}

export function drive(scheduler: Scheduler, arrivals: Arrival[], options: DriveOptions) {
	const stories = new Map<string, Story>();
	const coming = new MinHeap<Arrival>((arrival) => arrival.atMs);
	for (const arrival of arrivals) coming.push(arrival);
	const releases = new MinHeap<{ atMs: number; ticketId: string }>((release) => release.atMs);

	const answer = (story: Story, result: Outcome["result"], atMs: number) => {
		if (result.kind === "admitted") {
			story.answer = { kind: "admitted", atMs };
			releases.push({ atMs: atMs + options.latencyMs, ticketId: story.ask.ticketId });
		} else {
			story.answer = {
				kind: "rejected",
				reason: result.reason,
				atMs,
				retryAfterMs: result.retryAfterMs,
			};
		}
		const next = options.answered?.(story);
		if (next) coming.push(next);
	};

	let nowMs = coming.peek()?.atMs ?? 0;
	for (let steps = 0; nowMs <= options.untilMs; steps++) {
		if (steps > 5_000_000) throw new Error(`no progress at ${nowMs} ms`);
		for (let release = releases.peek(); release && release.atMs <= nowMs; ) {
			releases.pop();
			const story = stories.get(release.ticketId);
			const actual = story && options.actualTokens?.(story.ask);
			scheduler.release(release.ticketId, actual, nowMs);
			release = releases.peek();
		}
		if (scheduler.nextWakeMs(nowMs) === nowMs) {
			for (const { ticketId, result } of scheduler.tick(nowMs)) {
				const story = stories.get(ticketId);
				if (!story) throw new Error(`an outcome for unknown ticket ${ticketId}`);
				if (story.answer) throw new Error(`a second answer for ${ticketId}`);
				answer(story, result, nowMs);
			}
		}
		for (let arrival = coming.peek(); arrival && arrival.atMs <= nowMs; ) {
			coming.pop();
			const decision = scheduler.submit(arrival.ask, nowMs);
			const story: Story = { ask: arrival.ask, arrivedMs: nowMs, decision };
			stories.set(arrival.ask.ticketId, story);
			if (decision.kind !== "queued") answer(story, decision, nowMs);
			arrival = coming.peek();
		}
		options.observe?.(nowMs);
		const nextMs = Math.min(
			coming.peek()?.atMs ?? Number.POSITIVE_INFINITY,
			releases.peek()?.atMs ?? Number.POSITIVE_INFINITY,
			scheduler.nextWakeMs(nowMs) ?? Number.POSITIVE_INFINITY,
		);
		if (nextMs === Number.POSITIVE_INFINITY) break;
		nowMs = nextMs;
	}
	return stories;
}

/** Arrivals every `everyMs` from `fromMs` until before `toMs`, each made by `make(index, atMs)`. */
export function stream(
	fromMs: number,
	toMs: number,
	everyMs: number,
	make: (index: number, atMs: number) => Ask,
): Arrival[] {
	const arrivals: Arrival[] = [];
	for (let index = 0, atMs = fromMs; atMs < toMs; index++, atMs = fromMs + index * everyMs) {
		arrivals.push({ atMs, ask: make(index, atMs) });
	}
	return arrivals;
}
