// The admission scheduler for one provider credential: who is admitted now, who waits and who is
// turned away, over the pool's, its models' and its tenants' buckets, its concurrency leases, the
// fair priority queue and the provider's pause. Pure: every decision is made at the nowMs passed in.
import {
	type Ask,
	type Decision,
	isTokenCount,
	type Outcome,
	type PoolStatus,
	type RateLimitView,
	type Rejection,
	rejection,
	seconds,
} from "./admission.ts";
import { BucketScopes, type BucketScopesState, type Draw } from "./bucket-scopes.ts";
import { type Demand, noDemand } from "./demand.ts";
import { FairQueue, type Verdict, type Waiter } from "./fair-queue.ts";
import { Headroom, type HeadroomOptions } from "./headroom.ts";
import { type Lease, LeaseTable } from "./lease-table.ts";
import type { PoolLimits } from "./limits.ts";
import { MinHeap } from "./min-heap.ts";
import { CLASS_COUNT, PRIORITIES, type Priority } from "./priority.ts";
import type { BucketView, RateBucketsState } from "./rate-buckets.ts";
import type {
	TenantBucketsState,
	TenantLimits,
	TenantPolicy,
	TenantView,
} from "./tenant-limits.ts";
import { type EstimatedAsk, type Forecast, WaitEstimate } from "./wait-estimate.ts";

export type {
	Ask,
	BucketView,
	Decision,
	Lease,
	Outcome,
	PoolStatus,
	RateBucketsState,
	RateLimitView,
	Rejection,
	TenantBucketsState,
	TenantPolicy,
	TenantView,
};

/** JSON-serialisable state that must survive a restart. Waiters do not: they are re-submitted. */
export interface SchedulerSnapshot extends BucketScopesState {
	leases: Lease[];
	pausedUntilMs: number;
}

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
	/** What lower classes leave of the pool's buckets and slots for higher ones (headroom.ts). */
	headroom: HeadroomOptions;
}

/** Waiters looked at behind a blocked head, per decision, for one that can go around it... */
const BACKFILL_SCAN = 16;
/** ...and at most this many of them from any one tenant's line. */
const BACKFILL_DEPTH = 4;
/** Upcoming promotions nextWakeMs looks at for one that would give the queue a new head. */
const PROMOTION_LOOKAHEAD = 8;

export class Scheduler {
	readonly #options: SchedulerOptions;
	readonly #maxWaitMs: readonly number[];
	readonly #buckets: BucketScopes;
	readonly #queue: FairQueue;
	readonly #estimate: WaitEstimate;
	readonly #leases = new LeaseTable();
	readonly #headroom: Headroom;
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
		this.#headroom = new Headroom(options.headroom);
		this.#buckets = new BucketScopes(options.limits, options.tenants, snapshot, this.#headroom);
		this.#queue = new FairQueue(agingBoundMs / (CLASS_COUNT - 1));
		this.#estimate = new WaitEstimate({
			queue: this.#queue,
			poolCostMs: (requests, tokens) => this.#buckets.poolCostMs(requests, tokens),
			waitMs: (ahead, ask, nowMs) => this.#waitMs(ahead, ask, nowMs),
			weightOf: (tenant) => this.#buckets.tenant(tenant).policy.weight,
			arrivalsAbove: (rank, nowMs) => this.#headroom.arrivalsAbove(rank, nowMs),
		});
		if (snapshot) {
			this.#pausedUntilMs = snapshot.pausedUntilMs;
			for (const lease of snapshot.leases) {
				this.#leases.add({ ...lease, attempt: lease.attempt ?? 1 });
				this.#buckets.tenant(lease.tenant).inFlight++;
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
		const tooLarge = this.#buckets.tooLarge(ask);
		if (tooLarge) return tooLarge;
		this.#headroom.arrived(rank, ask.tokens, nowMs);

		this.#prepare(nowMs);
		if (this.#queue.size === 0 && this.#canAdmit({ ...ask, rank }, nowMs)) {
			return { kind: "admitted", lease: this.#admit(ask, nowMs) };
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
			this.#buckets.tenant(ask.tenant).policy.weight,
		);
		// It may be next in order, or able to go around a blocked head (others admissible now go too).
		for (let next = this.#select(nowMs); next; next = this.#select(nowMs)) {
			const result = { kind: "admitted", lease: this.#admit(next, nowMs) } as const;
			if (next === waiter) return result;
			this.#pending.push({ ticketId: next.ticketId, result });
		}

		if (waiter.deadlineMs <= nowMs || nowMs + estimate.etaMs > waiter.deadlineMs) {
			this.#queue.remove(waiter.ticketId);
			this.#sinceStart.deadlineRejected++;
			const retryAfterMs = this.#estimate.bookReturn(waiter, nowMs);
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
				const retryAfterMs = this.#estimate.bookReturn(waiter, nowMs);
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

	/** The buckets, for allowances (src/core/pool-allowances.ts), which reserve in them directly. */
	get scopes(): BucketScopes {
		return this.#buckets;
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
		this.#headroom.held(nowMs - lease.admittedMs);
		if (actualTokens !== undefined) {
			if (!isTokenCount(actualTokens)) {
				throw new RangeError(`ticket ${ticketId}: actual usage ${actualTokens} is not a count`);
			}
			this.#buckets.charge(lease, actualTokens - lease.tokens, nowMs);
		}
		this.#endLease(lease);
		return true;
	}

	/** Its holder is alive: the lease expires leaseTtlMs from now. False when it was reclaimed. */
	renew(ticketId: string, nowMs: number): boolean {
		return this.#leases.renew(ticketId, nowMs + this.#options.leaseTtlMs);
	}

	/** New tenant policies (weights, own limits), in force from the next decision. */
	setTenants(tenants: Record<string, TenantPolicy>, nowMs: number): void {
		for (const [name, weight] of this.#buckets.setTenants(tenants, nowMs)) {
			this.#queue.setWeight(name, weight);
			this.#queue.unpark(name);
		}
	}

	/** No admissions before untilMs. Never shortens a pause already in force. */
	pauseUntil(untilMs: number): void {
		this.#pausedUntilMs = Math.max(this.#pausedUntilMs, untilMs);
	}

	/** Caps the pool's bucket levels at what the provider reports remaining; never raises them. */
	lowerTo(room: { requests?: number; tokens?: number }, nowMs: number): void {
		this.#buckets.lowerTo(room, nowMs);
	}

	/**
	 * Changes the pool's limits live. Levels carry over, clamped to the new capacities; a new
	 * model starts full. Waiters that no longer fit any capacity are rejected as too_large (their
	 * outcomes come with the next tick).
	 */
	setLimits(limits: PoolLimits, nowMs: number): void {
		this.#buckets.setLimits(limits, nowMs);
		const tooLarge: Outcome[] = [];
		for (const waiter of this.#queue.waiters()) {
			const result = this.#buckets.tooLarge(waiter);
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
			this.#endLease(lease);
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
		const head = this.#leases.size < this.#buckets.maxConcurrent ? this.#head(nowMs) : undefined;
		if (head) {
			wakeMs = Math.min(wakeMs, nowMs + this.#readyInMs(head, nowMs));
			for (const promotion of this.#queue.upcomingPromotions(PROMOTION_LOOKAHEAD)) {
				if (promotion.atMs >= wakeMs) break;
				const { waiter } = promotion;
				if (waiter === head || this.#queue.isParked(waiter)) continue;
				// It may lead once it stands with the head (by fair tag or age) or above it.
				if (promotion.tier > this.#queue.lineTierAt(head, promotion.atMs)) continue;
				if (!this.#buckets.tenant(waiter.tenant).allows(waiter.tokens, promotion.atMs)) continue;
				wakeMs = Math.min(wakeMs, Math.max(promotion.atMs, nowMs + this.#readyInMs(waiter, nowMs)));
			}
		}
		return wakeMs === Number.POSITIVE_INFINITY ? undefined : Math.max(nowMs, wakeMs);
	}

	snapshot(): SchedulerSnapshot {
		return {
			...this.#buckets.state(),
			leases: [...this.#leases.values()],
			pausedUntilMs: this.#pausedUntilMs,
		};
	}

	/** The pool's request and token buckets: what a caller's rate-limit headers show, cheaply. */
	rateLimitView(nowMs: number): RateLimitView {
		return this.#buckets.poolView(nowMs);
	}

	status(nowMs: number): PoolStatus {
		const oldestSubmittedMs = this.#queue.oldestSubmittedMs();
		const byClass = this.#queue.countsByClass();
		return {
			...this.rateLimitView(nowMs),
			models: this.#buckets.modelViews(nowMs),
			inFlight: this.#leases.size,
			maxConcurrent: this.#buckets.maxConcurrent,
			queued: this.#queue.size,
			queuedByPriority: Object.fromEntries(
				PRIORITIES.map((priority, rank) => [priority, byClass[rank] ?? 0]),
			) as Record<Priority, number>,
			tenants: this.#buckets.tenantViews(this.#queue.countsByTenant(), nowMs),
			oldestWaitMs: oldestSubmittedMs === undefined ? 0 : Math.max(0, nowMs - oldestSubmittedMs),
			pausedUntilMs: this.#pausedUntilMs,
			sinceStart: { ...this.#sinceStart },
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
		return nowMs >= this.#pausedUntilMs && this.#leases.size < this.#buckets.maxConcurrent;
	}

	#canAdmit(ask: Draw, nowMs: number): boolean {
		return this.#open(nowMs) && this.#buckets.fits(ask, nowMs, this.#leases.size);
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
		const tenant = this.#buckets.tenant(waiter.tenant);
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
		const tenant = this.#buckets.tenant(waiter.tenant);
		if (!tenant.allows(waiter.tokens, nowMs)) {
			return firstInLine ? this.#park(waiter, tenant, nowMs) : "pass";
		}
		const fits = this.#canAdmit(waiter, nowMs);
		if (head)
			return fits && !this.#delays(head, waiter, walk.headReadyInMs, nowMs) ? "take" : "pass";
		walk.head = waiter;
		if (fits) return "take";
		// The head needs a free slot when it fits; a candidate must leave one.
		if (this.#leases.size + 1 >= this.#buckets.maxConcurrent) return "stop";
		walk.headReadyInMs = this.#readyInMs(waiter, nowMs);
		// Even one request of no tokens would make it later: nothing can go around it.
		const leastReadyInMs = Math.ceil(this.#buckets.poolWaitMs(2, waiter.tokens, nowMs));
		return leastReadyInMs > walk.headReadyInMs ? "stop" : "pass";
	};

	/** What an admission costs its tenant in fair-share terms: milliseconds of the pool's refill. */
	readonly #admissionCostMs = (waiter: Waiter): number =>
		this.#buckets.poolCostMs(1, waiter.tokens);

	/** Milliseconds until the pause is over and the buckets have room for it. */
	#readyInMs(waiter: Waiter, nowMs: number): number {
		return Math.ceil(this.#waitMs(noDemand(), waiter, nowMs));
	}

	/** Whether admitting `candidate` now would make the head's earliest start later. */
	#delays(head: Waiter, candidate: Waiter, headReadyInMs: number, nowMs: number): boolean {
		if (candidate.tenant === head.tenant) {
			const tenant = this.#buckets.tenant(head.tenant);
			const { maxConcurrent } = tenant.policy;
			if (maxConcurrent !== undefined && tenant.inFlight + 1 >= maxConcurrent) return true;
		}
		return Math.ceil(this.#buckets.bothReadyInMs(head, candidate, nowMs)) > headReadyInMs;
	}

	#admitWaiters(nowMs: number, outcomes: Outcome[]): void {
		for (let next = this.#select(nowMs); next; next = this.#select(nowMs)) {
			outcomes.push({
				ticketId: next.ticketId,
				result: { kind: "admitted", lease: this.#admit(next, nowMs) },
			});
		}
	}

	#admit(
		ask: { ticketId: string; tenant: string; model: string; tokens: number; attempt?: number },
		nowMs: number,
	): Lease {
		this.#buckets.take(ask, nowMs);
		this.#buckets.tenant(ask.tenant).inFlight++;
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
	#endLease(lease: Lease): void {
		const tenant = this.#buckets.tenant(lease.tenant);
		tenant.inFlight--;
		if (tenant.limited) this.#queue.unpark(lease.tenant);
	}

	/** Estimated milliseconds until the ask fits, if everything in `ahead` is admitted first. */
	#waitMs(ahead: Demand, ask: EstimatedAsk, nowMs: number): number {
		return Math.max(this.#pausedUntilMs - nowMs, this.#buckets.waitMs(ahead, ask, nowMs), 0);
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
		const estimate: Forecast = this.#estimate.of({ ...waiter, retry: false }, waiter.rank, nowMs);
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
