// The request bucket and the token bucket that one RateLimits describes (a pool's, or a model's),
// each ask taking one request and its tokens from both.
import type { RateLimits } from "./limits.ts";
import {
	type BucketSpec,
	type BucketState,
	bucketSpec,
	charge,
	clampToCapacity,
	fullBucket,
	hasRoom,
	levelAt,
	msUntilLevel,
	wholeUnitsAt,
} from "./token-bucket.ts";

/** One bucket as response headers report it; resetMs is the time until it is full again. */
export interface BucketView {
	limitPerMinute: number;
	capacity: number;
	remaining: number;
	resetMs: number;
}

export interface RateBucketsState {
	requests: BucketState;
	tokens: BucketState;
}

export class RateBuckets {
	readonly #limits: RateLimits;
	readonly #requestsSpec: BucketSpec;
	readonly #tokensSpec: BucketSpec;
	#requests: BucketState;
	#tokens: BucketState;

	/** Starts full, or from a saved state whose levels are clamped to today's capacities. */
	constructor(limits: RateLimits, saved?: RateBucketsState) {
		this.#limits = limits;
		this.#requestsSpec = bucketSpec(limits.requestsPerMinute, limits.burstRequests);
		this.#tokensSpec = bucketSpec(limits.tokensPerMinute, limits.burstTokens);
		this.#requests = saved
			? clampToCapacity(this.#requestsSpec, saved.requests)
			: fullBucket(this.#requestsSpec);
		this.#tokens = saved
			? clampToCapacity(this.#tokensSpec, saved.tokens)
			: fullBucket(this.#tokensSpec);
	}

	get tokenCapacity(): number {
		return this.#tokensSpec.capacity;
	}

	fits(tokens: number, nowMs: number): boolean {
		return (
			hasRoom(this.#requestsSpec, this.#requests, 1, nowMs) &&
			hasRoom(this.#tokensSpec, this.#tokens, tokens, nowMs)
		);
	}

	take(tokens: number, nowMs: number): void {
		this.#requests = charge(this.#requestsSpec, this.#requests, 1, nowMs);
		this.#tokens = charge(this.#tokensSpec, this.#tokens, tokens, nowMs);
	}

	/** Charges extra tokens, or refunds them when negative (reconciling an estimate). */
	chargeTokens(tokens: number, nowMs: number): void {
		this.#tokens = charge(this.#tokensSpec, this.#tokens, tokens, nowMs);
	}

	/** Caps the levels at what the provider reports as remaining; never raises them. */
	lowerTo(room: { requests?: number; tokens?: number }, nowMs: number): void {
		if (room.requests !== undefined) {
			this.#requests = capped(this.#requestsSpec, this.#requests, room.requests, nowMs);
		}
		if (room.tokens !== undefined) {
			this.#tokens = capped(this.#tokensSpec, this.#tokens, room.tokens, nowMs);
		}
	}

	/** Milliseconds of refill that `requests` requests and `tokens` tokens use up. */
	costMs(requests: number, tokens: number): number {
		return Math.max(
			requests / this.#requestsSpec.refillPerMs,
			tokens / this.#tokensSpec.refillPerMs,
		);
	}

	/** Milliseconds until `requests` requests and `tokens` tokens will have refilled. */
	waitMs(requests: number, tokens: number, nowMs: number): number {
		return Math.max(
			msUntilLevel(this.#requestsSpec, this.#requests, requests, nowMs),
			msUntilLevel(this.#tokensSpec, this.#tokens, tokens, nowMs),
		);
	}

	view(nowMs: number): { requests: BucketView; tokens: BucketView } {
		return {
			requests: viewOf(this.#requestsSpec, this.#requests, this.#limits.requestsPerMinute, nowMs),
			tokens: viewOf(this.#tokensSpec, this.#tokens, this.#limits.tokensPerMinute, nowMs),
		};
	}

	state(): RateBucketsState {
		return { requests: this.#requests, tokens: this.#tokens };
	}

	/** The levels as of nowMs, so that new limits apply to the refill from now on only. */
	stateAt(nowMs: number): RateBucketsState {
		return {
			requests: { level: levelAt(this.#requestsSpec, this.#requests, nowMs), updatedMs: nowMs },
			tokens: { level: levelAt(this.#tokensSpec, this.#tokens, nowMs), updatedMs: nowMs },
		};
	}
}

function capped(spec: BucketSpec, state: BucketState, room: number, nowMs: number): BucketState {
	const level = levelAt(spec, state, nowMs);
	return room < level
		? { level: Math.max(0, room), updatedMs: Math.max(state.updatedMs, nowMs) }
		: state;
}

function viewOf(
	spec: BucketSpec,
	state: BucketState,
	limitPerMinute: number,
	nowMs: number,
): BucketView {
	return {
		limitPerMinute,
		capacity: spec.capacity,
		remaining: wholeUnitsAt(spec, state, nowMs),
		resetMs: Math.ceil(msUntilLevel(spec, state, spec.capacity, nowMs)),
	};
}
