// The request bucket and the token bucket of one scope that limits admissions (the pool, one of its
// models, one tenant): every ask takes one request and its tokens from each bucket the scope has.
// A limit the scope leaves out has no bucket and never binds.
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

/** A scope's limits: per-minute rates, and capacities (default: a whole minute of the rate). */
export interface BucketLimits {
	requestsPerMinute?: number;
	tokensPerMinute?: number;
	burstRequests?: number;
	burstTokens?: number;
}

/** Requests and tokens held back in a scope's buckets. */
export interface Room {
	requests: number;
	tokens: number;
}

const NO_ROOM: Room = { requests: 0, tokens: 0 };

export interface RateBucketsState {
	requests?: BucketState;
	tokens?: BucketState;
	/** A sliding window's slots instead (src/core/sliding-window.ts): [start ms, requests, tokens]. */
	window?: { windowMs: number; entries: [number, number, number][] };
}

export interface RateBucketsView {
	requests?: BucketView;
	tokens?: BucketView;
}

class Bucket {
	/** As configured; `spec` is what is in force, less what allowances hold. */
	readonly full: BucketSpec;
	state: BucketState;
	/**
	 * Reserved by allowances not yet spent or not yet reported: out of the level, and out of the
	 * capacity too, so that refilling never counts it twice (src/core/pool-allowances.ts).
	 */
	held = 0;

	readonly limitPerMinute: number;

	/** Starts full, or from a saved state whose level is clamped to today's capacity. */
	constructor(limitPerMinute: number, capacity: number, saved: BucketState | undefined) {
		this.limitPerMinute = limitPerMinute;
		this.full = bucketSpec(limitPerMinute, capacity);
		this.state = saved ? clampToCapacity(this.full, saved) : fullBucket(this.full);
	}

	get spec(): BucketSpec {
		if (this.held === 0) return this.full;
		return { capacity: this.full.capacity - this.held, refillPerMs: this.full.refillPerMs };
	}

	charge(amount: number, nowMs: number): void {
		this.state = charge(this.spec, this.state, amount, nowMs);
	}

	/** Caps the level at `room`; never raises it. */
	lowerTo(room: number, nowMs: number): void {
		if (room < levelAt(this.spec, this.state, nowMs)) {
			this.state = { level: Math.max(0, room), updatedMs: Math.max(this.state.updatedMs, nowMs) };
		}
	}

	view(nowMs: number): BucketView {
		return {
			limitPerMinute: this.limitPerMinute,
			capacity: this.full.capacity,
			remaining: wholeUnitsAt(this.spec, this.state, nowMs),
			resetMs: Math.ceil(msUntilLevel(this.spec, this.state, this.spec.capacity, nowMs)),
		};
	}
}

function bucketOf(
	perMinute: number | undefined,
	capacity: number | undefined,
	saved: BucketState | undefined,
): Bucket | undefined {
	return perMinute === undefined ? undefined : new Bucket(perMinute, capacity ?? perMinute, saved);
}

export class RateBuckets {
	readonly #requests: Bucket | undefined;
	readonly #tokens: Bucket | undefined;

	constructor(limits: BucketLimits, saved?: RateBucketsState) {
		this.#requests = bucketOf(limits.requestsPerMinute, limits.burstRequests, saved?.requests);
		this.#tokens = bucketOf(limits.tokensPerMinute, limits.burstTokens, saved?.tokens);
	}

	/** Whether any bucket binds this scope. */
	get bounded(): boolean {
		return this.#requests !== undefined || this.#tokens !== undefined;
	}

	get tokenCapacity(): number {
		return this.#tokens?.full.capacity ?? Number.POSITIVE_INFINITY;
	}

	get requestCapacity(): number {
		return this.#requests?.spec.capacity ?? Number.POSITIVE_INFINITY;
	}

	/** Room for one request of `tokens`, leaving `reserve` (headroom for higher classes) untouched. */
	fits(tokens: number, nowMs: number, reserve: Room = NO_ROOM): boolean {
		return (
			(this.#requests === undefined ||
				hasRoom(this.#requests.spec, this.#requests.state, 1 + reserve.requests, nowMs)) &&
			(this.#tokens === undefined ||
				hasRoom(this.#tokens.spec, this.#tokens.state, tokens + reserve.tokens, nowMs))
		);
	}

	take(tokens: number, nowMs: number): void {
		this.#requests?.charge(1, nowMs);
		this.#tokens?.charge(tokens, nowMs);
	}

	/** Room for `requests` requests and `tokens` tokens that leaves `keepShare` of each capacity. */
	roomKeeping(requests: number, tokens: number, keepShare: number, nowMs: number): boolean {
		const keeps = (bucket: Bucket | undefined, amount: number) =>
			bucket === undefined ||
			hasRoom(bucket.spec, bucket.state, amount + keepShare * bucket.full.capacity, nowMs);
		return keeps(this.#requests, requests) && keeps(this.#tokens, tokens);
	}

	/** Takes many requests and their tokens at once (an allowance), or gives them back when negative. */
	reserve(requests: number, tokens: number, nowMs: number): void {
		this.#requests?.charge(requests, nowMs);
		this.#tokens?.charge(tokens, nowMs);
	}

	/** Allowances now hold this many more requests and tokens (fewer when negative). */
	hold(requests: number, tokens: number): void {
		if (this.#requests) this.#requests.held += requests;
		if (this.#tokens) this.#tokens.held += tokens;
	}

	get held(): { requests: number; tokens: number } {
		return { requests: this.#requests?.held ?? 0, tokens: this.#tokens?.held ?? 0 };
	}

	/**
	 * Charges extra tokens, or refunds them when negative (reconciling an estimate). A bucket
	 * takes them now, whenever the admission was (`_admittedMs`, which a sliding window needs).
	 */
	chargeTokens(tokens: number, nowMs: number, _admittedMs?: number): void {
		this.#tokens?.charge(tokens, nowMs);
	}

	/** Caps the levels at what the provider reports as remaining; never raises them. */
	lowerTo(room: { requests?: number; tokens?: number }, nowMs: number): void {
		if (room.requests !== undefined) this.#requests?.lowerTo(room.requests, nowMs);
		if (room.tokens !== undefined) this.#tokens?.lowerTo(room.tokens, nowMs);
	}

	/** Milliseconds of refill that `requests` requests and `tokens` tokens use up. */
	costMs(requests: number, tokens: number): number {
		return Math.max(
			this.#requests ? requests / this.#requests.spec.refillPerMs : 0,
			this.#tokens ? tokens / this.#tokens.spec.refillPerMs : 0,
		);
	}

	/** Milliseconds until `requests` requests and `tokens` tokens will have refilled. */
	waitMs(requests: number, tokens: number, nowMs: number): number {
		return Math.max(
			this.#requests ? msUntilLevel(this.#requests.spec, this.#requests.state, requests, nowMs) : 0,
			this.#tokens ? msUntilLevel(this.#tokens.spec, this.#tokens.state, tokens, nowMs) : 0,
		);
	}

	view(nowMs: number): RateBucketsView {
		const view: RateBucketsView = {};
		if (this.#requests) view.requests = this.#requests.view(nowMs);
		if (this.#tokens) view.tokens = this.#tokens.view(nowMs);
		return view;
	}

	state(): RateBucketsState {
		const state: RateBucketsState = {};
		if (this.#requests) state.requests = this.#requests.state;
		if (this.#tokens) state.tokens = this.#tokens.state;
		return state;
	}

	/** The levels as of nowMs, so that new limits apply to the refill from now on only. */
	stateAt(nowMs: number): RateBucketsState {
		const at = (bucket: Bucket | undefined) =>
			bucket && { level: levelAt(bucket.spec, bucket.state, nowMs), updatedMs: nowMs };
		const state: RateBucketsState = {};
		const requests = at(this.#requests);
		const tokens = at(this.#tokens);
		if (requests) state.requests = requests;
		if (tokens) state.tokens = tokens;
		return state;
	}
}
