// Every bucket that limits a pool's admissions — the pool's own, each limited model's, each
// tenant's — and the one admission check over them: an ask fits when every bucket it draws on
// has room, and takes from each.
import { count, type Rejection } from "./admission.ts";
import type { Demand } from "./demand.ts";
import { type Headroom, NO_RESERVE, type Reserve } from "./headroom.ts";
import type { PoolLimits } from "./limits.ts";
import { type BucketView, RateBuckets, type RateBucketsState } from "./rate-buckets.ts";
import { limiterFor, type SlidingWindow } from "./sliding-window.ts";
import {
	type TenantBucketsState,
	TenantLimits,
	type TenantPolicy,
	type TenantView,
} from "./tenant-limits.ts";

/** What an admission draws on: its model, its tenant and its tokens; its class, for headroom. */
export interface Draw {
	model: string;
	tenant: string;
	tokens: number;
	rank?: number;
	/** When it was admitted (a lease's), for reconciling in a sliding window's slot. */
	admittedMs?: number;
}

export interface BucketScopesState {
	/** A pool's scope always has both limits: two buckets, or one sliding window. */
	pool: RateBucketsState;
	models: Record<string, RateBucketsState>;
	/** Tenants' own buckets; absent in snapshots from before tenants had limits. */
	tenants?: Record<string, TenantBucketsState>;
}

const DEFAULT_POLICY: TenantPolicy = { weight: 1 };

/** A scope's limits: token buckets, or a sliding window. */
type Limiter = RateBuckets | SlidingWindow;

export class BucketScopes {
	#limits: PoolLimits;
	#pool: Limiter;
	#models: Map<string, Limiter>;
	readonly #tenants = new Map<string, TenantLimits>();
	#listed: Record<string, TenantPolicy>;
	readonly #headroom: Headroom | undefined;

	constructor(
		limits: PoolLimits,
		tenants: Record<string, TenantPolicy>,
		saved?: Partial<BucketScopesState>,
		headroom?: Headroom,
	) {
		this.#headroom = headroom;
		this.#listed = tenants;
		validateWeights(tenants);
		for (const [name, policy] of Object.entries(tenants)) {
			const own = saved?.tenants && Object.hasOwn(saved.tenants, name);
			this.#tenants.set(name, new TenantLimits(policy, own ? saved?.tenants?.[name] : undefined));
		}
		this.#limits = limits;
		this.#pool = limiterFor(limits, saved?.pool);
		this.#models = modelBuckets(limits, saved?.models ?? {});
	}

	/**
	 * New tenant policies, in force from the next decision: levels and slots in use carry over; a
	 * tenant no longer listed has weight 1 and no limits. Returns every known tenant's weight.
	 */
	setTenants(tenants: Record<string, TenantPolicy>, nowMs: number): Map<string, number> {
		validateWeights(tenants);
		this.#listed = tenants;
		const weights = new Map<string, number>();
		for (const name of new Set([...this.#tenants.keys(), ...Object.keys(tenants)])) {
			const old = this.#tenants.get(name);
			const policy = Object.hasOwn(tenants, name)
				? (tenants[name] as TenantPolicy)
				: DEFAULT_POLICY;
			const limits = new TenantLimits(policy, old?.buckets.stateAt(nowMs));
			limits.inFlight = old?.inFlight ?? 0;
			this.#tenants.set(name, limits);
			weights.set(name, policy.weight);
		}
		return weights;
	}

	/** Slots held by allowances (src/core/pool-allowances.ts), which leases cannot take. */
	heldSlots = 0;

	/** The slots leases may take: the pool's limit less those allowances hold. */
	get maxConcurrent(): number {
		return this.#limits.maxConcurrent - this.heldSlots;
	}

	get slotLimit(): number {
		return this.#limits.maxConcurrent;
	}

	tenant(name: string): TenantLimits {
		let tenant = this.#tenants.get(name);
		if (!tenant) {
			tenant = new TenantLimits(DEFAULT_POLICY);
			this.#tenants.set(name, tenant);
		}
		return tenant;
	}

	/**
	 * Room now in every bucket the draw takes from and a slot among its tenant's own, leaving the
	 * pool's headroom (buckets and slots, with `inFlight` leases held) for the classes above it.
	 */
	fits(draw: Draw, nowMs: number, inFlight = 0): boolean {
		const reserve = this.reserve(draw.rank, nowMs);
		return (
			inFlight + reserve.slots < this.#limits.maxConcurrent &&
			!this.tenant(draw.tenant).atConcurrencyLimit &&
			this.#bucketsOf(draw).every((buckets) =>
				buckets.fits(draw.tokens, nowMs, buckets === this.#pool ? reserve : undefined),
			)
		);
	}

	/** What a draw of class `rank` must leave in the pool's buckets and slots for the classes above. */
	reserve(rank: number | undefined, nowMs: number): Reserve {
		if (!this.#headroom?.active || rank === undefined || rank === 0) return NO_RESERVE;
		const capacity = {
			requests: this.#pool.requestCapacity,
			tokens: this.#pool.tokenCapacity,
			slots: this.#limits.maxConcurrent,
		};
		return this.#headroom.reserve(rank, capacity, nowMs);
	}

	take(draw: Draw, nowMs: number): void {
		for (const buckets of this.#bucketsOf(draw)) buckets.take(draw.tokens, nowMs);
	}

	/**
	 * Room for an allowance of `requests` and `draw.tokens` in every bucket the draw takes from,
	 * leaving `keepShare` of each; none where a sliding window binds (it has no level to hold in).
	 */
	roomForAllowance(draw: Draw, requests: number, keepShare: number, nowMs: number): boolean {
		return this.#bucketsOf(draw).every(
			(buckets) =>
				buckets instanceof RateBuckets &&
				buckets.roomKeeping(requests, draw.tokens, keepShare, nowMs),
		);
	}

	/** Takes an allowance's `requests` and `draw.tokens` from the draw's buckets (negative: returns). */
	reserveAllowance(draw: Draw, requests: number, nowMs: number): void {
		for (const buckets of this.#bucketsOf(draw)) {
			if (buckets instanceof RateBuckets) buckets.reserve(requests, draw.tokens, nowMs);
		}
	}

	/** Allowances hold `requests` and `draw.tokens` more (fewer when negative) in the draw's buckets. */
	holdAllowance(draw: Draw, requests: number): void {
		for (const buckets of this.#bucketsOf(draw)) {
			if (buckets instanceof RateBuckets) buckets.hold(requests, draw.tokens);
		}
	}

	/** Charges extra tokens to every bucket the draw took from, or refunds them when negative. */
	charge(draw: Draw, extraTokens: number, nowMs: number): void {
		for (const buckets of this.#bucketsOf(draw)) {
			buckets.chargeTokens(extraTokens, nowMs, draw.admittedMs);
		}
	}

	/** Milliseconds of the pool's refill that `requests` requests and `tokens` tokens use up. */
	poolCostMs(requests: number, tokens: number): number {
		return this.#pool.costMs(requests, tokens);
	}

	/** Milliseconds until the pool's buckets hold `requests` requests and `tokens` tokens. */
	poolWaitMs(requests: number, tokens: number, nowMs: number): number {
		return this.#pool.waitMs(requests, tokens, nowMs);
	}

	/** Estimated milliseconds until the draw fits, if everything in `ahead` is admitted first. */
	waitMs(ahead: Demand, draw: Draw, nowMs: number): number {
		const reserve = this.reserve(draw.rank, nowMs);
		return Math.max(
			this.#pool.waitMs(
				ahead.requests + 1 + reserve.requests,
				ahead.tokens + draw.tokens + reserve.tokens,
				nowMs,
			),
			this.#models
				.get(draw.model)
				?.waitMs(ahead.modelRequests + 1, ahead.modelTokens + draw.tokens, nowMs) ?? 0,
			this.tenant(draw.tenant).buckets.waitMs(
				ahead.tenantRequests + 1,
				ahead.tenantTokens + draw.tokens,
				nowMs,
			),
		);
	}

	/** Milliseconds until the buckets `head` and `candidate` share hold both of them. */
	bothReadyInMs(head: Draw, candidate: Draw, nowMs: number): number {
		const tokens = head.tokens + candidate.tokens;
		const reserve = this.reserve(head.rank, nowMs);
		let readyInMs = this.#pool.waitMs(2 + reserve.requests, tokens + reserve.tokens, nowMs);
		if (candidate.model === head.model) {
			readyInMs = Math.max(readyInMs, this.#models.get(head.model)?.waitMs(2, tokens, nowMs) ?? 0);
		}
		if (candidate.tenant === head.tenant) {
			readyInMs = Math.max(readyInMs, this.tenant(head.tenant).buckets.waitMs(2, tokens, nowMs));
		}
		return readyInMs;
	}

	/** A rejection for a draw larger than a bucket it needs can ever hold. */
	tooLarge(draw: Draw): Rejection | undefined {
		const modelCapacity = this.#models.get(draw.model)?.tokenCapacity ?? Number.POSITIVE_INFINITY;
		const capacity = Math.min(
			this.#pool.tokenCapacity,
			modelCapacity,
			this.tenant(draw.tenant).buckets.tokenCapacity,
		);
		if (draw.tokens <= capacity) return undefined;
		const setting =
			capacity === this.#pool.tokenCapacity
				? "this pool's limits.burstTokens (default: limits.tokensPerMinute)"
				: capacity === modelCapacity
					? `limits.models["${draw.model}"].burstTokens (default: its tokensPerMinute)`
					: `tenant ${draw.tenant}'s limits.tokensPerMinute`;
		return {
			kind: "rejected",
			reason: "too_large",
			retryAfterMs: 0,
			message: `This request is estimated at ${count(draw.tokens)} tokens, more than the ${count(capacity)} tokens that ${setting} lets through at once, so it can never be admitted. Lower max_tokens or shorten the input, or raise that limit if the provider allows it.`,
		};
	}

	/** Caps the pool's levels at what the provider reports remaining; never raises them. */
	lowerTo(room: { requests?: number; tokens?: number }, nowMs: number): void {
		this.#pool.lowerTo(room, nowMs);
	}

	/** New pool limits: levels carry over, clamped to the new capacities; a new model starts full. */
	setLimits(limits: PoolLimits, nowMs: number): void {
		const models = Object.fromEntries(
			[...this.#models].map(([model, buckets]) => [model, buckets.stateAt(nowMs)]),
		);
		const heldOf = (buckets: Limiter | undefined) =>
			buckets instanceof RateBuckets ? buckets.held : { requests: 0, tokens: 0 };
		const held = [...this.#models].map(([model, buckets]) => [model, heldOf(buckets)] as const);
		const poolHeld = heldOf(this.#pool);
		this.#limits = limits;
		this.#pool = limiterFor(limits, this.#pool.stateAt(nowMs));
		this.#models = modelBuckets(limits, models);
		// What allowances hold stays held under the new limits.
		for (const [buckets, { requests, tokens }] of [
			[this.#pool, poolHeld] as const,
			...held.map(([model, amount]) => [this.#models.get(model), amount] as const),
		]) {
			if (buckets instanceof RateBuckets) buckets.hold(requests, tokens);
		}
	}

	poolView(nowMs: number): { requests: BucketView; tokens: BucketView } {
		// A pool's scope always has both buckets.
		return this.#pool.view(nowMs) as { requests: BucketView; tokens: BucketView };
	}

	modelViews(nowMs: number): Record<string, { requests: BucketView; tokens: BucketView }> {
		return Object.fromEntries(
			[...this.#models].map(([model, buckets]) => [
				model,
				buckets.view(nowMs) as { requests: BucketView; tokens: BucketView },
			]),
		);
	}

	/** Tenants with a policy, waiters or leases: their queue, leases in flight and own buckets. */
	tenantViews(queuedByTenant: Map<string, number>, nowMs: number): Record<string, TenantView> {
		const views: Record<string, TenantView> = {};
		for (const [name, limits] of this.#tenants) {
			const queued = queuedByTenant.get(name) ?? 0;
			if (Object.hasOwn(this.#listed, name) || queued > 0 || limits.inFlight > 0) {
				views[name] = limits.view(queued, nowMs);
			}
		}
		return views;
	}

	state(): BucketScopesState {
		const tenants: Record<string, TenantBucketsState> = {};
		for (const [name, limits] of this.#tenants) {
			const state = limits.state();
			if (state) tenants[name] = state;
		}
		return {
			pool: this.#pool.state(),
			models: Object.fromEntries(
				[...this.#models].map(([model, buckets]) => [model, buckets.state()]),
			),
			tenants,
		};
	}

	/** Every bucket a draw takes from: the pool's, its tenant's, its model's if limited. */
	#bucketsOf(draw: Draw): Limiter[] {
		const buckets: Limiter[] = [this.#pool, this.tenant(draw.tenant).buckets];
		const model = this.#models.get(draw.model);
		if (model) buckets.push(model);
		return buckets;
	}
}

function validateWeights(tenants: Record<string, TenantPolicy>): void {
	for (const [name, policy] of Object.entries(tenants)) {
		if (!(Number.isFinite(policy.weight) && policy.weight > 0)) {
			throw new RangeError(`tenant ${name}: weight ${policy.weight} is not positive`);
		}
	}
}

function modelBuckets(
	limits: PoolLimits,
	saved: Record<string, RateBucketsState>,
): Map<string, Limiter> {
	return new Map(
		Object.entries(limits.models).map(([model, modelLimits]) => [
			model,
			limiterFor(modelLimits, Object.hasOwn(saved, model) ? saved[model] : undefined),
		]),
	);
}
