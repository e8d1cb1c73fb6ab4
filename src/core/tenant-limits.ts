// One tenant's own limits inside a pool, on top of the pool's: its rate buckets (each holding one
// minute of its limit) and its leases in flight, from the tenant's policy.
import { type BucketView, RateBuckets, type RateBucketsState } from "./rate-buckets.ts";

export interface TenantPolicy {
	/** Share of the pool against other tenants of the same priority class; positive. */
	weight: number;
	/** Each bucket holds one minute of its limit: an idle tenant may send that much at once. */
	requestsPerMinute?: number;
	tokensPerMinute?: number;
	maxConcurrent?: number;
}

export type TenantBucketsState = RateBucketsState;

export interface TenantView {
	weight: number;
	queued: number;
	inFlight: number;
	maxConcurrent?: number;
	requests?: BucketView;
	tokens?: BucketView;
}

export class TenantLimits {
	readonly buckets: RateBuckets;
	/** Leases of this tenant in flight in the pool. */
	inFlight = 0;

	readonly policy: TenantPolicy;

	constructor(policy: TenantPolicy, saved?: TenantBucketsState) {
		this.policy = policy;
		this.buckets = new RateBuckets(
			{ requestsPerMinute: policy.requestsPerMinute, tokensPerMinute: policy.tokensPerMinute },
			saved,
		);
	}

	/** Whether any limit of its own binds this tenant (a tenant without one is never skipped). */
	get limited(): boolean {
		return this.buckets.bounded || this.policy.maxConcurrent !== undefined;
	}

	get atConcurrencyLimit(): boolean {
		return this.policy.maxConcurrent !== undefined && this.inFlight >= this.policy.maxConcurrent;
	}

	/** Room now for one more request of `tokens`: in both buckets and in flight. */
	allows(tokens: number, nowMs: number): boolean {
		return !this.atConcurrencyLimit && this.buckets.fits(tokens, nowMs);
	}

	view(queued: number, nowMs: number): TenantView {
		const view: TenantView = { weight: this.policy.weight, queued, inFlight: this.inFlight };
		if (this.policy.maxConcurrent !== undefined) view.maxConcurrent = this.policy.maxConcurrent;
		return { ...view, ...this.buckets.view(nowMs) };
	}

	/** The bucket levels to persist; undefined when the tenant has no bucket. */
	state(): TenantBucketsState | undefined {
		return this.buckets.bounded ? this.buckets.state() : undefined;
	}
}
