// The admission scheduler for one provider credential: who is admitted now, who waits and who is
// turned away, over the pool's, its models' and its tenants' buckets, its concurrency leases, the
// fair priority queue and the provider's pause. Pure: every decision is made at the nowMs passed in.
import {
	CLASS_COUNT,
	type Demand,
	FairQueue,
	noDemand,
	type Verdict,
	type Waiter,
} from "./fair-queue.ts";
import { type Lease, LeaseTable } from "./lease-table.ts";
import type { PoolLimits } from "./limits.ts";
import { MinHeap } from "./min-heap.ts";
import { PRIORITIES, type Priority } from "./priority.ts";
import { type BucketView, RateBuckets, type RateBucketsState } from "./rate-buckets.ts";
import {
	type TenantBucketsState,
	TenantLimits,
	type TenantPolicy,
	type TenantView,
} from "./tenant-limits.ts";
import { type Estimate, type EstimatedAsk, WaitEstimate } from "./wait-estimate.ts";

export type { BucketView, Lease, RateBucketsState, TenantBucketsState, TenantPolicy, TenantView };

/** The queue policy of one pool; every value comes from the configuration, which holds the defaults. */
export interface SchedulerOptions {
	limits: PoolLimits;
	leaseTtlMs: number;
	/** Waiters in all. When full, an arrival of a higher class sheds the lowest, newest waiter. */
	maxQueueLength: number;
	/** Waiters of one tenant, shed the same way among its own. */
	maxQueuePerTenant: number;
	/** Longest a waiter of each class may wait, from its submission; an ask's deadline may shorten it. */
	maxWaitMsByPriority: Record<Priority, number>;
	/**
	 * Aging. A tenant's line of a class rises one class for every third of this that its front
	 * waiter waits at the front, so that after this long it is critical: no waiter stands at the
	 * front of its tenant's line longer than this behind work of a higher class. Waiting behind its
	 * own tenant's older waiters of its class does not count: a backlog earns no priority over
	 * other tenants. Finite and positive.
	 */
	agingBoundMs: number;
	/** Tenants' weights and own limits; a tenant not listed has weight 1 and no limits. */
	tenants: Record<string, TenantPolicy>;
}

export interface Ask {
	/** Unique among the pool's waiters and leases; also the lease id. */
	ticketId: string;
	tenant: string;
	model: string;
	priority: Priority;
	/** Estimated tokens, reserved on admission. */
	tokens: number;
	/** Absolute; a waiter not admitted by then is rejected. */
	deadlineMs: number;
	/** A re-send after a provider 429: queued ahead of its tenant's first attempts of its class. */
	retry?: boolean;
	/** Which send of its request this is (1, the default, is the first). */
	attempt?: number;
	/**
	 * When the request first asked, if earlier than now: a waiter re-submitted after a restart
	 * keeps its age (its aging, its place among its tenant's waiters, its class's longest wait).
	 */
	submittedMs?: number;
}

/**
 * retryAfterMs is when to come back to find room, if the traffic ahead behaves as estimated: after
 * the queue ahead and after the callers already told to come back earlier (at least 1). For
 * too_large it is 0, because no wait makes it fit. position (1-based) and etaMs are the place and
 * the estimated wait the ask had, or would have had, in the queue; too_large has neither.
 */
export interface Rejection {
	kind: "rejected";
	reason: "too_large" | "queue_full" | "deadline" | "shed";
	retryAfterMs: number;
	position?: number;
	etaMs?: number;
	message: string;
}

/** For a queued ask, position is its estimated 1-based place in the queue and etaMs its wait. */
export type Decision =
	| { kind: "admitted"; lease: Lease }
	| { kind: "queued"; position: number; etaMs: number }
	| Rejection;

export interface Outcome {
	ticketId: string;
	result: { kind: "admitted"; lease: Lease } | Rejection;
}

export interface RateLimitView {
	requests: BucketView;
	tokens: BucketView;
}

export interface PoolStatus {
	requests: BucketView;
	tokens: BucketView;
	models: Record<string, RateLimitView>;
	inFlight: number;
	maxConcurrent: number;
	queued: number;
	/** Waiters by the class they asked for. */
	queuedByPriority: Record<Priority, number>;
	/** Tenants with a policy, waiters or leases: their queue, leases in flight and own buckets. */
	tenants: Record<string, TenantView>;
	/** The longest any current waiter has waited since it was first submitted. */
	oldestWaitMs: number;
	pausedUntilMs: number;
	/** Counts since this scheduler started. */
	sinceStart: {
		/** Waiters displaced by higher-priority arrivals when the queue was full. */
		shed: number;
		/** Waiters whose deadline passed while they waited. */
		expired: number;
		/** Asks told at once that they could not be admitted before their deadline. */
		deadlineRejected: number;
	};
}

/** JSON-serialisable state that must survive a restart. Waiters do not: they are re-submitted. */
export interface SchedulerSnapshot {
	/** A pool's scope always has both buckets. */
	pool: Required<RateBucketsState>;
	models: Record<string, RateBucketsState>;
	/** Tenants' own buckets; absent in snapshots from before tenants had limits. */
	tenants?: Record<string, TenantBucketsState>;
	leases: Lease[];
	pausedUntilMs: number;
}

/** The buckets an ask draws on: the pool's, its model's if limited, its tenant's own. */
interface Scopes {
	model: RateBuckets | undefined;
	tenant: TenantLimits;
}

const DEFAULT_POLICY: TenantPolicy = { weight: 1 };
/** Waiters looked at behind a blocked head, per decision, for one that can go around it... */
const BACKFILL_SCAN = 16;
/** ...and at most this many of them from any one tenant's line. */
const BACKFILL_DEPTH = 4;
/** Upcoming promotions nextWakeMs looks at for one that would give the queue a new head. */
const PROMOTION_LOOKAHEAD = 8;

export class Scheduler {
	readonly #options: SchedulerOptions;
	readonly #maxWaitMs: readonly number[];
	#limits: PoolLimits;
	#pool: RateBuckets;
	#models: Map<string, RateBuckets>;
	readonly #tenants = new Map<string, TenantLimits>();
	readonly #queue: FairQueue;
	readonly #estimate: WaitEstimate;
	readonly #leases = new LeaseTable();
	// Tenants set aside at a bucket limit of their own, by when that bucket has room (lazy).
	readonly #tenantWakes = new MinHeap<{ tenant: string; atMs: number }>((wake) => wake.atMs);
	/** Outcomes decided outside tick() (sheds in submit, limits changed), handed out by tick(). */
	#pending: Outcome[] = [];
	#pausedUntilMs = 0;
	/** The walk in progress: its time, its head, and how long until the head fits. */
	readonly #walk: { nowMs: number; head: Waiter | undefined; headReadyInMs: number } = {
		nowMs: 0,
		head: undefined,
		headReadyInMs: 0,
	};
	readonly #sinceStart = { shed: 0, expired: 0, deadlineRejected: 0 };

	constructor(options: SchedulerOptions, snapshot?: SchedulerSnapshot) {
		this.#options = options;
		const { agingBoundMs } = options;
		if (!(Number.isFinite(agingBoundMs) && agingBoundMs > 0)) {
			throw new RangeError(`agingBoundMs ${agingBoundMs} is not a positive number of ms`);
		}
		this.#maxWaitMs = PRIORITIES.map((priority) => options.maxWaitMsByPriority[priority]);
		for (const [name, policy] of Object.entries(options.tenants)) {
			if (!(Number.isFinite(policy.weight) && policy.weight > 0)) {
				throw new RangeError(`tenant ${name}: weight ${policy.weight} is not positive`);
			}
			const saved = snapshot?.tenants && Object.hasOwn(snapshot.tenants, name);
			this.#tenants.set(
				name,
				new TenantLimits(policy, saved ? snapshot?.tenants?.[name] : undefined),
			);
		}
		this.#queue = new FairQueue(agingBoundMs / (CLASS_COUNT - 1));
		this.#estimate = new WaitEstimate({
			queue: this.#queue,
			poolCostMs: (requests, tokens) => this.#pool.costMs(requests, tokens),
			waitMs: (ahead, ask, nowMs) => this.#waitMs(ahead, ask, nowMs),
			weightOf: (tenant) => this.#tenantOf(tenant).policy.weight,
		});
		this.#limits = options.limits;
		this.#pool = new RateBuckets(this.#limits, snapshot?.pool);
		this.#models = modelBuckets(this.#limits, snapshot?.models ?? {});
		if (snapshot) {
			this.#pausedUntilMs = snapshot.pausedUntilMs;
			for (const lease of snapshot.leases) {
				this.#leases.add({ ...lease, attempt: lease.attempt ?? 1 });
				this.#tenantOf(lease.tenant).inFlight++;
			}
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
		const rank = PRIORITIES.indexOf(ask.priority);
		if (rank < 0) throw new RangeError(`ticket ${ask.ticketId}: no priority ${ask.priority}`);
		const scopes = this.#scopesOf(ask);
		const tooLarge = this.#tooLarge(ask, scopes);
		if (tooLarge) return tooLarge;

		this.#prepare(nowMs);
		if (this.#queue.size === 0 && this.#canAdmit(ask.tokens, scopes, nowMs)) {
			return { kind: "admitted", lease: this.#admit(ask, scopes, nowMs) };
		}

		const submittedMs = Math.min(ask.submittedMs ?? nowMs, nowMs);
		const tier = this.#queue.tierAt(rank, submittedMs, nowMs);
		// Estimated before it joins; waiters admissible now (a tick is due) still count as ahead.
		const estimate = this.#estimate.of(ask, tier, nowMs);
		const waiter = this.#queue.add(
			{
				ticketId: ask.ticketId,
				tenant: ask.tenant,
				model: ask.model,
				tokens: ask.tokens,
				rank,
				retry: ask.retry === true,
				attempt: ask.attempt ?? 1,
				submittedMs,
				deadlineMs: Math.min(ask.deadlineMs, submittedMs + (this.#maxWaitMs[rank] as number)),
			},
			scopes.tenant.policy.weight,
		);
		// It may be next in order, or able to go around a blocked head (others admissible now go too).
		for (let next = this.#select(nowMs); next; next = this.#select(nowMs)) {
			const result = { kind: "admitted", lease: this.#admitWaiter(next, nowMs) } as const;
			if (next === waiter) return result;
			this.#pending.push({ ticketId: next.ticketId, result });
		}

		if (waiter.deadlineMs <= nowMs || nowMs + estimate.etaMs > waiter.deadlineMs) {
			this.#queue.remove(waiter.ticketId);
			this.#sinceStart.deadlineRejected++;
			const retryAfterMs = this.#estimate.bookReturn(ask, nowMs);
			return rejection(
				"deadline",
				retryAfterMs,
				`The estimated wait of ${seconds(estimate.etaMs)} is longer than this request may wait (${seconds(Math.max(0, waiter.deadlineMs - nowMs))}). Retry in about ${seconds(retryAfterMs)} or allow a longer wait with x-max-wait-ms.`,
				estimate,
			);
		}

		const tenantFull = this.#queue.sizeOf(ask.tenant) > this.#options.maxQueuePerTenant;
		if (tenantFull || this.#queue.size > this.#options.maxQueueLength) {
			const victim = this.#queue.victim(tenantFull ? ask.tenant : undefined);
			if (!victim || victim === waiter || victim.rank <= rank) {
				this.#queue.remove(waiter.ticketId);
				const retryAfterMs = this.#estimate.bookReturn(ask, nowMs);
				const scope = tenantFull
					? `for tenant ${ask.tenant} (${this.#options.maxQueuePerTenant} waiting)`
					: `for this provider key (${this.#options.maxQueueLength} waiting)`;
				return rejection(
					"queue_full",
					retryAfterMs,
					`The queue ${scope} is full of requests of this priority or higher. Retry in about ${seconds(retryAfterMs)}.`,
					estimate,
				);
			}
			this.#shed(victim, nowMs);
		}
		return { kind: "queued", position: estimate.position, etaMs: Math.ceil(estimate.etaMs) };
	}

	/** Removes a waiter; charges nothing. False when it is not waiting (admitted, or unknown). */
	cancel(ticketId: string): boolean {
		return this.#queue.remove(ticketId) !== undefined;
	}

	/** The lease of an admitted ticket, while it is held. */
	lease(ticketId: string): Lease | undefined {
		return this.#leases.get(ticketId);
	}

	/**
	 * Ends a lease and reconciles its reserved tokens with the actual count: a refund or an extra
	 * charge. `undefined` keeps the reservation. False when the lease is unknown or was reclaimed.
	 */
	release(ticketId: string, actualTokens: number | undefined, nowMs: number): boolean {
		const lease = this.#leases.remove(ticketId);
		if (!lease) return false;
		const scopes = this.#scopesOf(lease);
		if (actualTokens !== undefined) {
			if (!isTokenCount(actualTokens)) {
				throw new RangeError(`ticket ${ticketId}: actual usage ${actualTokens} is not a count`);
			}
			for (const buckets of this.#bucketsOf(scopes)) {
				buckets.chargeTokens(actualTokens - lease.tokens, nowMs);
			}
		}
		this.#endLease(lease, scopes.tenant);
		return true;
	}

	/** No admissions before untilMs. Never shortens a pause already in force. */
	pauseUntil(untilMs: number): void {
		this.#pausedUntilMs = Math.max(this.#pausedUntilMs, untilMs);
	}

	/** Caps the pool's bucket levels at what the provider reports remaining; never raises them. */
	lowerTo(room: { requests?: number; tokens?: number }, nowMs: number): void {
		this.#pool.lowerTo(room, nowMs);
	}

	/**
	 * Changes the pool's limits live. Levels carry over, clamped to the new capacities; a new
	 * model starts full. Waiters that no longer fit any capacity are rejected as too_large (their
	 * outcomes come with the next tick).
	 */
	setLimits(limits: PoolLimits, nowMs: number): void {
		const models = Object.fromEntries(
			[...this.#models].map(([model, buckets]) => [model, buckets.stateAt(nowMs)]),
		);
		this.#limits = limits;
		this.#pool = new RateBuckets(limits, this.#pool.stateAt(nowMs));
		this.#models = modelBuckets(limits, models);
		const tooLarge: Outcome[] = [];
		for (const waiter of this.#queue.waiters()) {
			const result = this.#tooLarge(waiter, this.#scopesOf(waiter));
			if (result) tooLarge.push({ ticketId: waiter.ticketId, result });
		}
		for (const outcome of tooLarge) this.#queue.remove(outcome.ticketId);
		this.#pending.push(...tooLarge);
	}

	/**
	 * Reclaims expired leases, admits the waiters that now fit, and rejects waiters whose deadline
	 * has come. A waiter that fits at its deadline is admitted.
	 */
	tick(nowMs: number): Outcome[] {
		const outcomes = this.#pending;
		this.#pending = [];
		for (
			let lease = this.#leases.popExpired(nowMs);
			lease;
			lease = this.#leases.popExpired(nowMs)
		) {
			// Its slot is free again; its reserved tokens stay charged.
			this.#endLease(lease, this.#tenantOf(lease.tenant));
		}
		this.#prepare(nowMs);
		this.#admitWaiters(nowMs, outcomes);
		if (this.#rejectOverdue(nowMs, outcomes)) this.#admitWaiters(nowMs, outcomes);
		return outcomes;
	}

	/**
	 * The earliest time at or after nowMs when tick() could change anything: an outcome is
	 * pending, the queue's head fits, a deadline comes, a lease expires, a tenant at its own limit
	 * has room again, or a waiter that fits sooner than the head rises to the head's class (where
	 * it may or may not lead). Undefined when only a submit or release can.
	 */
	nextWakeMs(nowMs: number): number | undefined {
		if (this.#pending.length > 0) return nowMs;
		this.#prepare(nowMs);
		let wakeMs = Math.min(
			this.#leases.earliestExpiryMs() ?? Number.POSITIVE_INFINITY,
			this.#queue.earliestDeadlineMs() ?? Number.POSITIVE_INFINITY,
			this.#tenantWakes.peek()?.atMs ?? Number.POSITIVE_INFINITY,
		);
		// With every slot taken the head waits for a release (a call) or an expiry (counted above).
		const head = this.#leases.size < this.#limits.maxConcurrent ? this.#head(nowMs) : undefined;
		if (head) {
			wakeMs = Math.min(wakeMs, nowMs + this.#readyInMs(head, nowMs));
			for (const promotion of this.#queue.upcomingPromotions(PROMOTION_LOOKAHEAD)) {
				if (promotion.atMs >= wakeMs) break;
				const { waiter } = promotion;
				if (waiter === head || this.#queue.isParked(waiter)) continue;
				// It may lead once it stands with the head (by fair tag or age) or above it.
				if (promotion.tier > this.#queue.lineTierAt(head, promotion.atMs)) continue;
				if (!this.#tenantOf(waiter.tenant).allows(waiter.tokens, promotion.atMs)) continue;
				wakeMs = Math.min(wakeMs, Math.max(promotion.atMs, nowMs + this.#readyInMs(waiter, nowMs)));
			}
		}
		return wakeMs === Number.POSITIVE_INFINITY ? undefined : Math.max(nowMs, wakeMs);
	}

	snapshot(): SchedulerSnapshot {
		const tenants: Record<string, TenantBucketsState> = {};
		for (const [name, limits] of this.#tenants) {
			const state = limits.state();
			if (state) tenants[name] = state;
		}
		return {
			pool: this.#pool.state() as Required<RateBucketsState>,
			models: Object.fromEntries(
				[...this.#models].map(([model, buckets]) => [model, buckets.state()]),
			),
			tenants,
			leases: [...this.#leases.values()],
			pausedUntilMs: this.#pausedUntilMs,
		};
	}

	/** The pool's request and token buckets: what a caller's rate-limit headers show, cheaply. */
	rateLimitView(nowMs: number): RateLimitView {
		// A pool's scope always has both buckets.
		return this.#pool.view(nowMs) as RateLimitView;
	}

	status(nowMs: number): PoolStatus {
		const oldestSubmittedMs = this.#queue.oldestSubmittedMs();
		const byClass = this.#queue.countsByClass();
		const byTenant = this.#queue.countsByTenant();
		const tenants: Record<string, TenantView> = {};
		for (const [name, limits] of this.#tenants) {
			const queued = byTenant.get(name) ?? 0;
			const listed = Object.hasOwn(this.#options.tenants, name);
			if (listed || queued > 0 || limits.inFlight > 0) tenants[name] = limits.view(queued, nowMs);
		}
		return {
			...this.rateLimitView(nowMs),
			models: Object.fromEntries(
				[...this.#models].map(([model, buckets]) => [model, buckets.view(nowMs) as RateLimitView]),
			),
			inFlight: this.#leases.size,
			maxConcurrent: this.#limits.maxConcurrent,
			queued: this.#queue.size,
			queuedByPriority: Object.fromEntries(
				PRIORITIES.map((priority, rank) => [priority, byClass[rank] ?? 0]),
			) as Record<Priority, number>,
			tenants,
			oldestWaitMs: oldestSubmittedMs === undefined ? 0 : Math.max(0, nowMs - oldestSubmittedMs),
			pausedUntilMs: this.#pausedUntilMs,
			sinceStart: { ...this.#sinceStart },
		};
	}

	#tenantOf(name: string): TenantLimits {
		let tenant = this.#tenants.get(name);
		if (!tenant) {
			tenant = new TenantLimits(DEFAULT_POLICY);
			this.#tenants.set(name, tenant);
		}
		return tenant;
	}

	#scopesOf(ask: { model: string; tenant: string }): Scopes {
		return { model: this.#models.get(ask.model), tenant: this.#tenantOf(ask.tenant) };
	}

	/** Every bucket an ask of these scopes takes from: the one admission check. */
	#bucketsOf(scopes: Scopes): RateBuckets[] {
		const buckets = [this.#pool, scopes.tenant.buckets];
		if (scopes.model) buckets.push(scopes.model);
		return buckets;
	}

	#tooLarge(
		ask: { tokens: number; model: string; tenant: string },
		scopes: Scopes,
	): Rejection | undefined {
		const modelCapacity = scopes.model?.tokenCapacity ?? Number.POSITIVE_INFINITY;
		const capacity = Math.min(
			this.#pool.tokenCapacity,
			modelCapacity,
			scopes.tenant.buckets.tokenCapacity,
		);
		if (ask.tokens <= capacity) return undefined;
		const setting =
			capacity === this.#pool.tokenCapacity
				? "this pool's limits.burstTokens (default: limits.tokensPerMinute)"
				: capacity === modelCapacity
					? `limits.models["${ask.model}"].burstTokens (default: its tokensPerMinute)`
					: `tenant ${ask.tenant}'s limits.tokensPerMinute`;
		return {
			kind: "rejected",
			reason: "too_large",
			retryAfterMs: 0,
			message: `This request is estimated at ${count(ask.tokens)} tokens, more than the ${count(capacity)} tokens that ${setting} lets through at once, so it can never be admitted. Lower max_tokens or shorten the input, or raise that limit if the provider allows it.`,
		};
	}

	/** Promotions and tenants' room that time has brought, before any decision. */
	#prepare(nowMs: number): void {
		this.#queue.advance(nowMs);
		for (let wake = this.#tenantWakes.peek(); wake && wake.atMs <= nowMs; ) {
			this.#tenantWakes.pop();
			this.#queue.unpark(wake.tenant);
			wake = this.#tenantWakes.peek();
		}
	}

	/** Whether a slot is free and the pool is not paused: what every admission needs first. */
	#open(nowMs: number): boolean {
		return nowMs >= this.#pausedUntilMs && this.#leases.size < this.#limits.maxConcurrent;
	}

	#canAdmit(tokens: number, scopes: Scopes, nowMs: number): boolean {
		return (
			this.#open(nowMs) &&
			!scopes.tenant.atConcurrencyLimit &&
			this.#bucketsOf(scopes).every((buckets) => buckets.fits(tokens, nowMs))
		);
	}

	/** Sets a waiter's tenant aside until its own limit has room for it. */
	#park(waiter: Waiter, tenant: TenantLimits, nowMs: number): Verdict {
		// At its concurrency limit it waits for a release or an expiry, which unpark it.
		if (!tenant.atConcurrencyLimit) {
			const atMs = nowMs + Math.ceil(tenant.buckets.waitMs(1, waiter.tokens, nowMs));
			this.#tenantWakes.push({ tenant: waiter.tenant, atMs });
		}
		return "park";
	}

	/** The first waiter in order whose tenant has room (tenants without room are parked). */
	#head(nowMs: number): Waiter | undefined {
		this.#startWalk(nowMs);
		this.#queue.walk(1, 1, this.#visitForHead, this.#admissionCostMs);
		return this.#walk.head;
	}

	#startWalk(nowMs: number): void {
		const walk = this.#walk;
		walk.nowMs = nowMs;
		walk.head = undefined;
		walk.headReadyInMs = 0;
	}

	readonly #visitForHead = (waiter: Waiter): Verdict => {
		const { nowMs } = this.#walk;
		const tenant = this.#tenantOf(waiter.tenant);
		if (!tenant.allows(waiter.tokens, nowMs)) return this.#park(waiter, tenant, nowMs);
		this.#walk.head = waiter;
		return "stop";
	};

	/**
	 * The waiter to admit now, removed from the queue: the head if it fits, else the first of the
	 * next few in order that fits and does not make the head's earliest start any later.
	 */
	#select(nowMs: number): Waiter | undefined {
		if (!this.#open(nowMs)) return undefined;
		this.#startWalk(nowMs);
		return this.#queue.walk(
			BACKFILL_SCAN,
			BACKFILL_DEPTH,
			this.#visitForAdmission,
			this.#admissionCostMs,
		);
	}

	readonly #visitForAdmission = (waiter: Waiter, firstInLine: boolean): Verdict => {
		const walk = this.#walk;
		const { nowMs, head } = walk;
		const scopes = this.#scopesOf(waiter);
		if (!scopes.tenant.allows(waiter.tokens, nowMs)) {
			return firstInLine ? this.#park(waiter, scopes.tenant, nowMs) : "pass";
		}
		const fits = this.#canAdmit(waiter.tokens, scopes, nowMs);
		if (head)
			return fits && !this.#delays(head, waiter, walk.headReadyInMs, nowMs) ? "take" : "pass";
		walk.head = waiter;
		if (fits) return "take";
		// The head needs a free slot when it fits; a candidate must leave one.
		if (this.#leases.size + 1 >= this.#limits.maxConcurrent) return "stop";
		walk.headReadyInMs = this.#readyInMs(waiter, nowMs);
		// Even one request of no tokens would make it later: nothing can go around it.
		const leastReadyInMs = Math.ceil(this.#pool.waitMs(2, waiter.tokens, nowMs));
		return leastReadyInMs > walk.headReadyInMs ? "stop" : "pass";
	};

	/** What an admission costs its tenant in fair-share terms: milliseconds of the pool's refill. */
	readonly #admissionCostMs = (waiter: Waiter): number => this.#pool.costMs(1, waiter.tokens);

	/** Milliseconds until the pause is over and the buckets have room for it. */
	#readyInMs(waiter: Waiter, nowMs: number): number {
		return Math.ceil(this.#waitMs(noDemand(), waiter, nowMs));
	}

	/** Whether admitting `candidate` now would make the head's earliest start later. */
	#delays(head: Waiter, candidate: Waiter, headReadyInMs: number, nowMs: number): boolean {
		const tokens = head.tokens + candidate.tokens;
		let readyInMs = this.#pool.waitMs(2, tokens, nowMs);
		if (candidate.model === head.model) {
			readyInMs = Math.max(readyInMs, this.#models.get(head.model)?.waitMs(2, tokens, nowMs) ?? 0);
		}
		if (candidate.tenant === head.tenant) {
			const tenant = this.#tenantOf(head.tenant);
			const { maxConcurrent } = tenant.policy;
			if (maxConcurrent !== undefined && tenant.inFlight + 1 >= maxConcurrent) return true;
			readyInMs = Math.max(readyInMs, tenant.buckets.waitMs(2, tokens, nowMs));
		}
		return Math.ceil(readyInMs) > headReadyInMs;
	}

	#admitWaiters(nowMs: number, outcomes: Outcome[]): void {
		for (let next = this.#select(nowMs); next; next = this.#select(nowMs)) {
			outcomes.push({
				ticketId: next.ticketId,
				result: { kind: "admitted", lease: this.#admitWaiter(next, nowMs) },
			});
		}
	}

	#admitWaiter(waiter: Waiter, nowMs: number): Lease {
		return this.#admit(waiter, this.#scopesOf(waiter), nowMs);
	}

	#admit(
		ask: { ticketId: string; tenant: string; model: string; tokens: number; attempt?: number },
		scopes: Scopes,
		nowMs: number,
	): Lease {
		for (const buckets of this.#bucketsOf(scopes)) buckets.take(ask.tokens, nowMs);
		scopes.tenant.inFlight++;
		const lease: Lease = {
			ticketId: ask.ticketId,
			tenant: ask.tenant,
			model: ask.model,
			tokens: ask.tokens,
			attempt: ask.attempt ?? 1,
			admittedMs: nowMs,
			expiresMs: nowMs + this.#options.leaseTtlMs,
		};
		this.#leases.add(lease);
		return lease;
	}

	/** A lease is over (released or reclaimed): its tenant has a slot again. */
	#endLease(lease: Lease, tenant: TenantLimits): void {
		tenant.inFlight--;
		if (tenant.limited) this.#queue.unpark(lease.tenant);
	}

	/** Estimated milliseconds until the ask fits, if everything in `ahead` is admitted first. */
	#waitMs(ahead: Demand, ask: EstimatedAsk, nowMs: number): number {
		const { model, tenant } = this.#scopesOf(ask);
		return Math.max(
			this.#pausedUntilMs - nowMs,
			this.#pool.waitMs(ahead.requests + 1, ahead.tokens + ask.tokens, nowMs),
			model?.waitMs(ahead.modelRequests + 1, ahead.modelTokens + ask.tokens, nowMs) ?? 0,
			tenant.buckets.waitMs(ahead.tenantRequests + 1, ahead.tenantTokens + ask.tokens, nowMs),
			0,
		);
	}

	/** Turns a waiter away to make room, telling it when to come back. */
	#shed(waiter: Waiter, nowMs: number): void {
		this.#queue.remove(waiter.ticketId);
		this.#sinceStart.shed++;
		const result = this.#turnedAway(waiter, nowMs, (retryAfterMs) =>
			rejection(
				"shed",
				retryAfterMs,
				`The queue for this provider key is full and this request gave its place to one of higher priority. Retry in about ${seconds(retryAfterMs)}.`,
			),
		);
		this.#pending.push({ ticketId: waiter.ticketId, result });
	}

	/** A rejection for a waiter that left the queue, with the estimate it would have on rejoining. */
	#turnedAway(waiter: Waiter, nowMs: number, make: (retryAfterMs: number) => Rejection): Rejection {
		// It would come back as a new first attempt of its class.
		const estimate: Estimate = this.#estimate.of({ ...waiter, retry: false }, waiter.rank, nowMs);
		const retryAfterMs = this.#estimate.bookReturn(waiter, nowMs);
		return { ...make(retryAfterMs), position: estimate.position, etaMs: Math.ceil(estimate.etaMs) };
	}

	/** Rejects every waiter whose deadline has come; says whether there were any. */
	#rejectOverdue(nowMs: number, outcomes: Outcome[]): boolean {
		const before = outcomes.length;
		for (
			let waiter = this.#queue.popOverdue(nowMs);
			waiter;
			waiter = this.#queue.popOverdue(nowMs)
		) {
			this.#sinceStart.expired++;
			const result = this.#turnedAway(waiter, nowMs, (retryAfterMs) =>
				rejection(
					"deadline",
					retryAfterMs,
					`This request reached its deadline while waiting in the queue. Retry in about ${seconds(retryAfterMs)} or allow a longer wait with x-max-wait-ms.`,
				),
			);
			outcomes.push({ ticketId: waiter.ticketId, result });
		}
		return outcomes.length > before;
	}
}

function modelBuckets(
	limits: PoolLimits,
	saved: Record<string, RateBucketsState>,
): Map<string, RateBuckets> {
	return new Map(
		Object.entries(limits.models).map(([model, modelLimits]) => [
			model,
			new RateBuckets(modelLimits, Object.hasOwn(saved, model) ? saved[model] : undefined),
		]),
	);
}

function isTokenCount(tokens: number): boolean {
	return Number.isFinite(tokens) && tokens >= 0;
}

function rejection(
	reason: Rejection["reason"],
	retryAfterMs: number,
	message: string,
	estimate?: Estimate,
): Rejection {
	const result: Rejection = { kind: "rejected", reason, retryAfterMs, message };
	if (estimate) {
		result.position = estimate.position;
		result.etaMs = Math.ceil(estimate.etaMs);
	}
	return result;
}

function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** A token count as a person reads it: whole, with thousands separators. */
function count(tokens: number): string {
	return Math.round(tokens).toLocaleString("en-US");
}
