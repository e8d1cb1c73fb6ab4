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
