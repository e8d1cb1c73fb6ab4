// One tenant's own limits inside a pool, on top of the pool's: requests and tokens per minute and
// leases in flight, from the tenant's policy. A limit the policy leaves out does not bind.
import type { BucketView } from "./rate-buckets.ts";
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

export interface TenantPolicy {
	/** Share of the pool against other tenants of the same priority class; positive. */
	weight: number;
	/** Each bucket holds one minute of its limit: an idle tenant may send that much at once. */
	requestsPerMinute?: number;
	tokensPerMinute?: number;
	maxConcurrent?: number;
}

export interface TenantBucketsState {
	requests?: BucketState;
	tokens?: BucketState;
}

export interface TenantView {
	weight: number;
	queued: number;
	inFlight: number;
	maxConcurrent?: number;
	requests?: BucketView;
	tokens?: BucketView;
}

interface Bucket {
	readonly spec: BucketSpec;
	readonly limitPerMinute: number;
	state: BucketState;
}

export class TenantLimits {
	readonly policy: TenantPolicy;
	readonly #requests: Bucket | undefined;
	readonly #tokens: Bucket | undefined;
	/** Leases of this tenant in flight in the pool. */
	inFlight = 0;

	constructor(policy: TenantPolicy, saved?: TenantBucketsState) {
		this.policy = policy;
		this.#requests = bucketOf(policy.requestsPerMinute, saved?.requests);
		this.#tokens = bucketOf(policy.tokensPerMinute, saved?.tokens);
	}

	/** Whether any limit of its own binds this tenant (a tenant without one is never skipped). */
	get limited(): boolean {
		return (
			this.#requests !== undefined ||
			this.#tokens !== undefined ||
			this.policy.maxConcurrent !== undefined
		);
	}

	get tokenCapacity(): number {
		return this.#tokens?.spec.capacity ?? Number.POSITIVE_INFINITY;
	}

	get atConcurrencyLimit(): boolean {
		return this.policy.maxConcurrent !== undefined && this.inFlight >= this.policy.maxConcurrent;
	}

	/** Room now for one more request of `tokens`: in both buckets and in flight. */
	allows(tokens: number, nowMs: number): boolean {
		return (
			!this.atConcurrencyLimit &&
			(this.#requests === undefined ||
				hasRoom(this.#requests.spec, this.#requests.state, 1, nowMs)) &&
			(this.#tokens === undefined || hasRoom(this.#tokens.spec, this.#tokens.state, tokens, nowMs))
		);
	}

	take(tokens: number, nowMs: number): void {
		if (this.#requests)
			this.#requests.state = charge(this.#requests.spec, this.#requests.state, 1, nowMs);
		this.chargeTokens(tokens, nowMs);
	}

	/** Charges extra tokens, or refunds them when negative. */
	chargeTokens(tokens: number, nowMs: number): void {
		if (this.#tokens)
			this.#tokens.state = charge(this.#tokens.spec, this.#tokens.state, tokens, nowMs);
	}

	/** Milliseconds until the buckets hold `requests` requests and `tokens` tokens (0 if unlimited). */
	waitMs(requests: number, tokens: number, nowMs: number): number {
		return Math.max(
			this.#requests ? msUntilLevel(this.#requests.spec, this.#requests.state, requests, nowMs) : 0,
			this.#tokens ? msUntilLevel(this.#tokens.spec, this.#tokens.state, tokens, nowMs) : 0,
		);
	}

	/** Milliseconds of this tenant's refill that one request of `tokens` uses up. */
	costMs(tokens: number): number {
		return Math.max(
			this.#requests ? 1 / this.#requests.spec.refillPerMs : 0,
			this.#tokens ? tokens / this.#tokens.spec.refillPerMs : 0,
		);
	}

	view(queued: number, nowMs: number): TenantView {
		const view: TenantView = { weight: this.policy.weight, queued, inFlight: this.inFlight };
		if (this.policy.maxConcurrent !== undefined) view.maxConcurrent = this.policy.maxConcurrent;
		if (this.#requests) view.requests = viewOf(this.#requests, nowMs);
		if (this.#tokens) view.tokens = viewOf(this.#tokens, nowMs);
		return view;
	}

	/** The bucket levels to persist; undefined when the tenant has no bucket. */
	state(): TenantBucketsState | undefined {
		if (!this.#requests && !this.#tokens) return undefined;
		const state: TenantBucketsState = {};
		if (this.#requests) state.requests = this.#requests.state;
		if (this.#tokens) state.tokens = this.#tokens.state;
		return state;
	}
}

function bucketOf(
	perMinute: number | undefined,
	saved: BucketState | undefined,
): Bucket | undefined {
	if (perMinute === undefined) return undefined;
	const spec = bucketSpec(perMinute, perMinute);
	return {
		spec,
		limitPerMinute: perMinute,
		state: saved ? clampToCapacity(spec, saved) : fullBucket(spec),
	};
}

function viewOf(bucket: Bucket, nowMs: number): BucketView {
	return {
		limitPerMinute: bucket.limitPerMinute,
		capacity: bucket.spec.capacity,
		remaining: wholeUnitsAt(bucket.spec, bucket.state, nowMs),
		resetMs: Math.ceil(msUntilLevel(bucket.spec, bucket.state, bucket.spec.capacity, nowMs)),
	};
}
