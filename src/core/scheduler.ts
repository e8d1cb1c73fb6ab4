// The admission scheduler for one provider credential: rate buckets, concurrency leases, the wait
// queue and the provider's pause. Pure: every decision is made at the nowMs the caller passes in.
import type { PoolLimits } from "./limits.ts";
import { MinHeap } from "./min-heap.ts";
import type { Priority } from "./priority.ts";
import { type BucketView, RateBuckets, type RateBucketsState } from "./rate-buckets.ts";
import { type Demand, WaitQueue } from "./wait-queue.ts";

export type { BucketView, RateBucketsState };

export interface SchedulerOptions {
	limits: PoolLimits;
	leaseTtlMs: number;
	maxQueueLength: number;
}

export interface Ask {
	/** Unique per attempt; also the lease id. */
	ticketId: string;
	tenant: string;
	model: string;
	priority: Priority;
	/** Estimated tokens, reserved on admission. */
	tokens: number;
	/** Absolute; a waiter not admitted by then is rejected. */
	deadlineMs: number;
	/** A re-send after a provider 429: queued ahead of first attempts. */
	retry?: boolean;
}

export interface Lease {
	ticketId: string;
	tenant: string;
	model: string;
	tokens: number;
	admittedMs: number;
	expiresMs: number;
}

/**
 * retryAfterMs is the estimated wait had the ask been queued (at least 1); for too_large it is 0,
 * because no wait makes it fit.
 */
export interface Rejection {
	kind: "rejected";
	reason: "too_large" | "queue_full" | "deadline";
	retryAfterMs: number;
	message: string;
}

/** For a queued ask, position is its 1-based place in the queue and etaMs its estimated wait. */
export type Decision =
	| { kind: "admitted"; lease: Lease }
	| { kind: "queued"; position: number; etaMs: number }
	| Rejection;

export interface Outcome {
	ticketId: string;
	result: { kind: "admitted"; lease: Lease } | Rejection;
}

export interface PoolStatus {
	requests: BucketView;
	tokens: BucketView;
	models: Record<string, { requests: BucketView; tokens: BucketView }>;
	inFlight: number;
	maxConcurrent: number;
	queued: number;
	oldestWaitMs: number;
	pausedUntilMs: number;
}

/** JSON-serialisable state that must survive a restart. Waiters do not: their callers are gone. */
export interface SchedulerSnapshot {
	pool: RateBucketsState;
	models: Record<string, RateBucketsState>;
	leases: Lease[];
	pausedUntilMs: number;
}

const NOTHING_AHEAD: Demand = { requests: 0, tokens: 0, modelRequests: 0, modelTokens: 0 };
/** Past this many released leases still in the expiry index, it is rebuilt from the live ones. */
const HEAP_GARBAGE_ALLOWANCE = 1024;

export class Scheduler {
	readonly #options: SchedulerOptions;
	readonly #pool: RateBuckets;
	readonly #models: Map<string, RateBuckets>;
	readonly #queue = new WaitQueue<Ask>();
	readonly #leases = new Map<string, Lease>();
	// Lazy deletion: a released lease stays here until it surfaces or the index is rebuilt.
	readonly #leaseExpiries = new MinHeap<Lease>((lease) => lease.expiresMs);
	#pausedUntilMs = 0;

	constructor(options: SchedulerOptions, snapshot?: SchedulerSnapshot) {
		this.#options = options;
		const { limits } = options;
		this.#pool = new RateBuckets(limits, snapshot?.pool);
		this.#models = new Map(
			Object.entries(limits.models).map(([model, modelLimits]) => {
				const saved =
					snapshot && Object.hasOwn(snapshot.models, model) ? snapshot.models[model] : undefined;
				return [model, new RateBuckets(modelLimits, saved)];
			}),
		);
		if (snapshot) {
			this.#pausedUntilMs = snapshot.pausedUntilMs;
			for (const lease of snapshot.leases) this.#addLease(lease);
		}
	}

	/** Admits the ask now, queues it, or rejects it at once. */
	submit(ask: Ask, nowMs: number): Decision {
		if (this.#leases.has(ask.ticketId) || this.#queue.has(ask.ticketId)) {
			throw new Error(`ticket ${ask.ticketId} is already queued or leased`);
		}
		if (!isTokenCount(ask.tokens)) {
			throw new RangeError(`ticket ${ask.ticketId}: token estimate ${ask.tokens} is not a count`);
		}
		const model = this.#models.get(ask.model);
		const tooLarge = this.#tooLarge(ask, model);
		if (tooLarge) return tooLarge;

		const retry = ask.retry === true;
		const nothingAhead = retry ? this.#queue.peek()?.retry !== true : this.#queue.size === 0;
		if (nothingAhead && this.#canAdmit(ask, model, nowMs)) {
			return { kind: "admitted", lease: this.#admit(ask, model, nowMs) };
		}

		const waitMs = this.#waitMs(this.#queue.demandAhead(retry, ask.model), ask, model, nowMs);
		const retryAfterMs = Math.max(1, Math.ceil(waitMs));
		const { maxQueueLength } = this.#options;
		if (this.#queue.size >= maxQueueLength) {
			return rejection(
				"queue_full",
				retryAfterMs,
				`The queue for this provider key is full (${maxQueueLength} waiting). Retry in about ${seconds(retryAfterMs)}.`,
			);
		}
		if (ask.deadlineMs <= nowMs || nowMs + waitMs > ask.deadlineMs) {
			return rejection(
				"deadline",
				retryAfterMs,
				`The estimated wait of ${seconds(retryAfterMs)} is longer than this request may wait (${seconds(Math.max(0, ask.deadlineMs - nowMs))}). Retry later or allow a longer wait with x-max-wait-ms.`,
			);
		}
		return { kind: "queued", position: this.#queue.push(ask, nowMs), etaMs: Math.ceil(waitMs) };
	}

	/** Removes a waiter; charges nothing. False when it is not waiting (admitted, or unknown). */
	cancel(ticketId: string): boolean {
		return this.#queue.remove(ticketId) !== undefined;
	}

	/**
	 * Ends a lease and reconciles its reserved tokens with the actual count: a refund or an extra
	 * charge. `undefined` keeps the reservation. False when the lease is unknown or was reclaimed.
	 */
	release(ticketId: string, actualTokens: number | undefined, nowMs: number): boolean {
		const lease = this.#leases.get(ticketId);
		if (!lease) return false;
		if (actualTokens !== undefined) {
			if (!isTokenCount(actualTokens)) {
				throw new RangeError(`ticket ${ticketId}: actual usage ${actualTokens} is not a count`);
			}
			const extraTokens = actualTokens - lease.tokens;
			this.#pool.chargeTokens(extraTokens, nowMs);
			this.#models.get(lease.model)?.chargeTokens(extraTokens, nowMs);
		}
		this.#leases.delete(ticketId);
		return true;
	}

	/** No admissions before untilMs. Never shortens a pause already in force. */
	pauseUntil(untilMs: number): void {
		this.#pausedUntilMs = Math.max(this.#pausedUntilMs, untilMs);
	}

	/**
	 * Reclaims expired leases, admits the waiters that now fit, and rejects waiters whose deadline
	 * has come. A waiter that fits at its deadline is admitted.
	 */
	tick(nowMs: number): Outcome[] {
		const outcomes: Outcome[] = [];
		this.#reclaimExpiredLeases(nowMs);
		this.#admitWaiters(nowMs, outcomes);
		if (this.#rejectOverdue(nowMs, outcomes)) this.#admitWaiters(nowMs, outcomes);
		return outcomes;
	}

	/**
	 * The earliest time at or after nowMs when tick() could change anything: the queue's head fits,
	 * a deadline comes, a lease expires. Undefined when only a submit or release can.
	 */
	nextWakeMs(nowMs: number): number | undefined {
		let wakeMs = Math.min(
			this.#earliestLeaseExpiryMs() ?? Number.POSITIVE_INFINITY,
			this.#queue.earliestDeadlineMs() ?? Number.POSITIVE_INFINITY,
		);
		const head = this.#queue.peek();
		// With every slot taken the head waits for a release (a call) or an expiry (counted above).
		if (head && this.#leases.size < this.#options.limits.maxConcurrent) {
			const headModel = this.#models.get(head.model);
			// Whole milliseconds rounded up, so that at the wake time the refill has certainly arrived.
			// Rounding the wait, not the sum, keeps an epoch-sized nowMs from adding its float error.
			const readyMs = nowMs + Math.ceil(this.#waitMs(NOTHING_AHEAD, head, headModel, nowMs));
			wakeMs = Math.min(wakeMs, readyMs);
		}
		return wakeMs === Number.POSITIVE_INFINITY ? undefined : Math.max(nowMs, wakeMs);
	}

	snapshot(): SchedulerSnapshot {
		return {
			pool: this.#pool.state(),
			models: Object.fromEntries(
				[...this.#models].map(([model, buckets]) => [model, buckets.state()]),
			),
			leases: [...this.#leases.values()],
			pausedUntilMs: this.#pausedUntilMs,
		};
	}

	status(nowMs: number): PoolStatus {
		const oldestEnqueuedMs = this.#queue.oldestEnqueuedMs();
		return {
			...this.#pool.view(nowMs),
			models: Object.fromEntries(
				[...this.#models].map(([model, buckets]) => [model, buckets.view(nowMs)]),
			),
			inFlight: this.#leases.size,
			maxConcurrent: this.#options.limits.maxConcurrent,
			queued: this.#queue.size,
			oldestWaitMs: oldestEnqueuedMs === undefined ? 0 : Math.max(0, nowMs - oldestEnqueuedMs),
			pausedUntilMs: this.#pausedUntilMs,
		};
	}

	#tooLarge(ask: Ask, model: RateBuckets | undefined): Rejection | undefined {
		const modelIsSmaller = model !== undefined && model.tokenCapacity < this.#pool.tokenCapacity;
		const capacity = modelIsSmaller ? model.tokenCapacity : this.#pool.tokenCapacity;
		if (ask.tokens <= capacity) return undefined;
		const scope = modelIsSmaller ? `model ${ask.model}` : "this provider key";
		return rejection(
			"too_large",
			0,
			`This request is estimated at ${ask.tokens} tokens, more than the ${capacity}-token burst capacity of ${scope}, so it can never be admitted. Lower max_tokens or shorten the input.`,
		);
	}

	#canAdmit(ask: Ask, model: RateBuckets | undefined, nowMs: number): boolean {
		return (
			nowMs >= this.#pausedUntilMs &&
			this.#leases.size < this.#options.limits.maxConcurrent &&
			this.#pool.fits(ask.tokens, nowMs) &&
			(model === undefined || model.fits(ask.tokens, nowMs))
		);
	}

	#admit(ask: Ask, model: RateBuckets | undefined, nowMs: number): Lease {
		this.#pool.take(ask.tokens, nowMs);
		model?.take(ask.tokens, nowMs);
		const lease: Lease = {
			ticketId: ask.ticketId,
			tenant: ask.tenant,
			model: ask.model,
			tokens: ask.tokens,
			admittedMs: nowMs,
			expiresMs: nowMs + this.#options.leaseTtlMs,
		};
		this.#addLease(lease);
		return lease;
	}

	#addLease(lease: Lease): void {
		this.#leases.set(lease.ticketId, lease);
		this.#leaseExpiries.push(lease);
		if (this.#leaseExpiries.size > 2 * this.#leases.size + HEAP_GARBAGE_ALLOWANCE) {
			this.#leaseExpiries.retain((held) => this.#leases.get(held.ticketId) === held);
		}
	}

	/** Estimated milliseconds until the ask fits, if everything in `ahead` is admitted first. */
	#waitMs(ahead: Demand, ask: Ask, model: RateBuckets | undefined, nowMs: number): number {
		const poolWaitMs = this.#pool.waitMs(ahead.requests + 1, ahead.tokens + ask.tokens, nowMs);
		const modelWaitMs =
			model?.waitMs(ahead.modelRequests + 1, ahead.modelTokens + ask.tokens, nowMs) ?? 0;
		return Math.max(this.#pausedUntilMs - nowMs, poolWaitMs, modelWaitMs, 0);
	}

	#earliestLeaseExpiryMs(): number | undefined {
		let lease = this.#leaseExpiries.peek();
		while (lease && this.#leases.get(lease.ticketId) !== lease) {
			this.#leaseExpiries.pop();
			lease = this.#leaseExpiries.peek();
		}
		return lease?.expiresMs;
	}

	/** Frees the slots of leases past expiry; their reserved tokens stay charged. */
	#reclaimExpiredLeases(nowMs: number): void {
		for (
			let expiresMs = this.#earliestLeaseExpiryMs();
			expiresMs !== undefined && expiresMs <= nowMs;
			expiresMs = this.#earliestLeaseExpiryMs()
		) {
			const lease = this.#leaseExpiries.pop();
			if (lease) this.#leases.delete(lease.ticketId);
		}
	}

	#admitWaiters(nowMs: number, outcomes: Outcome[]): void {
		for (let head = this.#queue.peek(); head; head = this.#queue.peek()) {
			const model = this.#models.get(head.model);
			if (!this.#canAdmit(head, model, nowMs)) return;
			this.#queue.shift();
			outcomes.push({
				ticketId: head.ticketId,
				result: { kind: "admitted", lease: this.#admit(head, model, nowMs) },
			});
		}
	}

	/** Rejects every waiter whose deadline has come; says whether there were any. */
	#rejectOverdue(nowMs: number, outcomes: Outcome[]): boolean {
		const before = outcomes.length;
		for (let ask = this.#queue.popOverdue(nowMs); ask; ask = this.#queue.popOverdue(nowMs)) {
			// Retry after the wait it would face if it joined the queue again now.
			const ahead = this.#queue.demandAhead(ask.retry === true, ask.model);
			const waitMs = this.#waitMs(ahead, ask, this.#models.get(ask.model), nowMs);
			const retryAfterMs = Math.max(1, Math.ceil(waitMs));
			outcomes.push({
				ticketId: ask.ticketId,
				result: rejection(
					"deadline",
					retryAfterMs,
					`This request reached its deadline while waiting in the queue. Retry in about ${seconds(retryAfterMs)} or allow a longer wait with x-max-wait-ms.`,
				),
			});
		}
		return outcomes.length > before;
	}
}

function isTokenCount(tokens: number): boolean {
	return Number.isFinite(tokens) && tokens >= 0;
}

function rejection(reason: Rejection["reason"], retryAfterMs: number, message: string): Rejection {
	return { kind: "rejected", reason, retryAfterMs, message };
}

function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
