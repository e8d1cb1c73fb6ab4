// A pool's retry budget (Google SRE book, "Handling Overload"): retries are allowed only while they
// stay under a tenth of the pool's requests over the last minute, so retries never multiply an outage.

export interface RetryBudgetOptions {
	/** Retries allowed per request over the window: 0.1 lets 10 requests earn one retry. */
	retryRatio: number;
	/**
	 * Retries always allowed per window whatever the traffic, so that a nearly idle pool (a few
	 * requests a minute, whose ratio allows none) can still retry a transient failure.
	 */
	minRetriesPerWindow: number;
	windowMs: number;
	/** The window slides one bucket at a time: it covers the last windowMs to within one bucket. */
	bucketMs: number;
}

/** 10 % of the last minute's requests, at least 10 retries a minute, in 1-second buckets. */
export const DEFAULT_RETRY_BUDGET: RetryBudgetOptions = {
	retryRatio: 0.1,
	minRetriesPerWindow: 10,
	windowMs: 60_000,
	bucketMs: 1_000,
};

/** `allowance` is how many retries the window's requests earn; `retries` how many were made. */
export type RetryVerdict =
	| { allowed: true; retries: number; allowance: number }
	| { allowed: false; reason: "retry_budget_exhausted"; retries: number; allowance: number };

/** JSON-serialisable; counts newest bucket first. */
export interface RetryBudgetSnapshot {
	bucketMs: number;
	newestBucket: number;
	requests: number[];
	retries: number[];
}

/** Below every real clock reading, and finite so that a snapshot survives JSON. */
const NO_BUCKET_YET = Number.MIN_SAFE_INTEGER;

/**
 * Counts requests (a request's first send upstream: recordRequest) and retries (every further
 * send: recordRetry) in a ring of buckets. Each call is O(1): it clears at most the buckets the
 * clock moved past, never more than the ring holds. A clock that goes backwards counts into the
 * newest bucket.
 */
export class RetryBudget {
	readonly #options: RetryBudgetOptions;
	readonly #slots: number;
	readonly #requests: number[];
	readonly #retries: number[];
	#requestTotal = 0;
	#retryTotal = 0;
	#newestBucket = NO_BUCKET_YET;

	constructor(options: RetryBudgetOptions = DEFAULT_RETRY_BUDGET, snapshot?: RetryBudgetSnapshot) {
		const { retryRatio, minRetriesPerWindow, windowMs, bucketMs } = options;
		if (!(retryRatio >= 0 && minRetriesPerWindow >= 0 && bucketMs > 0 && windowMs >= bucketMs)) {
			throw new RangeError(
				`a retry budget needs retryRatio ≥ 0, minRetriesPerWindow ≥ 0 and windowMs ≥ bucketMs > 0; got ${JSON.stringify(options)}`,
			);
		}
		this.#options = options;
		this.#slots = Math.ceil(windowMs / bucketMs);
		this.#requests = new Array<number>(this.#slots).fill(0);
		this.#retries = new Array<number>(this.#slots).fill(0);
		if (snapshot && snapshot.bucketMs === bucketMs) this.#restore(snapshot);
	}

	/** A request went upstream for the first time. */
	recordRequest(nowMs: number): void {
		const slot = this.#advance(nowMs);
		this.#requests[slot] = (this.#requests[slot] ?? 0) + 1;
		this.#requestTotal += 1;
	}

	/** A retry was decided (count it when it is decided, so that it is not given out twice). */
	recordRetry(nowMs: number): void {
		const slot = this.#advance(nowMs);
		this.#retries[slot] = (this.#retries[slot] ?? 0) + 1;
		this.#retryTotal += 1;
	}

	/** Whether one more retry stays within the budget. */
	canRetry(nowMs: number): RetryVerdict {
		this.#advance(nowMs);
		const earned = Math.floor(this.#options.retryRatio * this.#requestTotal + 1e-9);
		const allowance = Math.max(this.#options.minRetriesPerWindow, earned);
		const retries = this.#retryTotal;
		return retries < allowance
			? { allowed: true, retries, allowance }
			: { allowed: false, reason: "retry_budget_exhausted", retries, allowance };
	}

	snapshot(): RetryBudgetSnapshot {
		const requests: number[] = [];
		const retries: number[] = [];
		for (let age = 0; age < this.#slots; age++) {
			const slot = this.#slotOf(this.#newestBucket - age);
			requests.push(this.#requests[slot] ?? 0);
			retries.push(this.#retries[slot] ?? 0);
		}
		return {
			bucketMs: this.#options.bucketMs,
			newestBucket: this.#newestBucket,
			requests,
			retries,
		};
	}

	/** Moves the window to nowMs and returns the slot of nowMs's bucket. */
	#advance(nowMs: number): number {
		if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs must be finite; got ${nowMs}`);
		const bucket = Math.floor(nowMs / this.#options.bucketMs);
		if (bucket > this.#newestBucket) {
			const passed = bucket - this.#newestBucket;
			if (passed >= this.#slots) {
				this.#requests.fill(0);
				this.#retries.fill(0);
				this.#requestTotal = 0;
				this.#retryTotal = 0;
			} else {
				for (let b = this.#newestBucket + 1; b <= bucket; b++) this.#clear(this.#slotOf(b));
			}
			this.#newestBucket = bucket;
		}
		return this.#slotOf(this.#newestBucket);
	}

	#clear(slot: number): void {
		this.#requestTotal -= this.#requests[slot] ?? 0;
		this.#retryTotal -= this.#retries[slot] ?? 0;
		this.#requests[slot] = 0;
		this.#retries[slot] = 0;
	}

	#slotOf(bucket: number): number {
		return ((bucket % this.#slots) + this.#slots) % this.#slots;
	}

	/** Takes the snapshot's buckets that fit this ring; counts that are not counts become 0. */
	#restore(snapshot: RetryBudgetSnapshot): void {
		if (!Number.isSafeInteger(snapshot.newestBucket)) return;
		this.#newestBucket = snapshot.newestBucket;
		const count = (value: unknown) =>
			typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
		for (let age = 0; age < this.#slots; age++) {
			const slot = this.#slotOf(this.#newestBucket - age);
			const requests = count(snapshot.requests?.[age]);
			const retries = count(snapshot.retries?.[age]);
			this.#requests[slot] = requests;
			this.#retries[slot] = retries;
			this.#requestTotal += requests;
			this.#retryTotal += retries;
		}
	}
}
