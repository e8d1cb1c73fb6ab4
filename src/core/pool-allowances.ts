// The Pool as an allowance authority: it grants a Worker isolate requests, tokens and concurrency
// slots for one tenant and model, reserved in every bucket they draw on at the moment of the grant
// and held out of those buckets' capacity until spent and reported (so a refill never counts them
// twice), only while nobody waits and the pool is far from its limits; it takes back what the
// isolate returns, and reclaims what a silent isolate never does.
import {
	AllowanceLedger,
	type Grant,
	type GrantReport,
	type HeldGrant,
	type Quantity,
} from "./allowance.ts";
import type { ReportedLimits } from "./limit-learning.ts";
import type { Scheduler } from "./scheduler.ts";

export type PoolDimension = "requests" | "tokens" | "slots";
export const POOL_DIMENSIONS: readonly PoolDimension[] = ["requests", "tokens", "slots"];

/** What a pool's allowance may be spent on: one tenant's requests to one model. */
export interface AllowanceScope {
	tenant: string;
	model: string;
}

export type PoolGrant = Grant<PoolDimension, AllowanceScope>;
export type PoolGrantReport = GrantReport<PoolDimension>;
export type SavedGrant = HeldGrant<PoolDimension, AllowanceScope>;

export interface AllowancePolicy {
	/** How long a grant may be spent. */
	spendWindowMs: number;
	/** After its spend window, how long a grant's slots stay held for requests still running. */
	reclaimAfterMs: number;
}

/** Every bucket, and the slots, keep this share of their capacity after a grant: "near its limit". */
const KEEP_SHARE = 0.5;
/** One grant takes at most this share of any bucket's capacity, or of the slots. */
const MAX_SHARE = 0.1;

export class PoolAllowances {
	readonly #scheduler: Scheduler;
	readonly #policy: AllowancePolicy;
	readonly #ledger: AllowanceLedger<PoolDimension, AllowanceScope>;
	#granted = 0;

	constructor(scheduler: Scheduler, policy: AllowancePolicy, saved: SavedGrant[] = []) {
		this.#scheduler = scheduler;
		this.#policy = policy;
		this.#ledger = new AllowanceLedger(POOL_DIMENSIONS, saved);
		for (const grant of this.#ledger.values()) this.#hold(grant, grant.outstanding, 1);
	}

	/** What every isolate holds now: requests and tokens not yet spent, slots not yet given back. */
	get outstanding(): Readonly<Quantity<PoolDimension>> {
		return this.#ledger.outstanding;
	}

	/**
	 * Grants `want` (capped to a share of the pool) to `holder` for `scope`, reserved in its
	 * buckets now; undefined while anything waits, the pool is paused, or the grant would bring any
	 * bucket or the slots near the limit. A tenant with a concurrency limit of its own gets none.
	 */
	grant(
		holder: string,
		scope: AllowanceScope,
		want: Quantity<PoolDimension>,
		nowMs: number,
	): PoolGrant | undefined {
		const scheduler = this.#scheduler;
		const scopes = scheduler.scopes;
		const { queued, pausedUntilMs, inFlight } = scheduler.status(nowMs);
		if (queued > 0 || nowMs < pausedUntilMs) return undefined;
		if (scopes.tenant(scope.tenant).policy.maxConcurrent !== undefined) return undefined;
		const pool = scopes.poolView(nowMs);
		const amount: Quantity<PoolDimension> = {
			requests: Math.floor(Math.min(want.requests, MAX_SHARE * pool.requests.capacity)),
			tokens: Math.ceil(Math.min(want.tokens, MAX_SHARE * pool.tokens.capacity)),
			slots: Math.floor(Math.min(want.slots, MAX_SHARE * scopes.slotLimit)),
		};
		if (amount.requests < 1 || amount.slots < 1) return undefined;
		const slotsAfter = inFlight + scopes.heldSlots + amount.slots;
		if (slotsAfter > (1 - KEEP_SHARE) * scopes.slotLimit) return undefined;
		const draw = { ...scope, tokens: amount.tokens };
		if (!scopes.roomForAllowance(draw, amount.requests, KEEP_SHARE, nowMs)) return undefined;
		scopes.reserveAllowance(draw, amount.requests, nowMs);
		this.#granted++;
		const spendUntilMs = nowMs + this.#policy.spendWindowMs;
		const grant: PoolGrant = {
			id: `${holder}:${this.#granted}:${nowMs}`,
			holder,
			scope,
			amount,
			spendUntilMs,
			reclaimAtMs: spendUntilMs + this.#policy.reclaimAfterMs,
		};
		this.#hold(this.#ledger.open(grant), amount, 1);
		return grant;
	}

	/** Whether new grants would be considered now: nobody waits and the pool is not paused. */
	open(nowMs: number): boolean {
		const { queued, pausedUntilMs } = this.#scheduler.status(nowMs);
		return queued === 0 && nowMs >= pausedUntilMs;
	}

	/**
	 * An isolate's report: what it used is no longer held (it was charged at the grant); what it
	 * returns is no longer held and goes back into the buckets and the slots.
	 */
	report(report: PoolGrantReport, nowMs: number): void {
		const grant = this.#ledger.get(report.grantId);
		const applied = this.#ledger.report(report, nowMs + this.#policy.reclaimAfterMs);
		if (!grant || !applied) return;
		const { used, back } = applied;
		this.#hold(grant, used, -1);
		this.#hold(grant, back, -1);
		if (back.requests > 0 || back.tokens > 0) {
			this.#scheduler.scopes.reserveAllowance(
				{ ...grant.scope, tokens: -back.tokens },
				-back.requests,
				nowMs,
			);
		}
	}

	/** The tokens an allowance's request used beyond its estimate (or short of it, refunded). */
	reconcile(scope: AllowanceScope, extraTokens: number, nowMs: number): void {
		if (extraTokens === 0) return;
		this.#scheduler.scopes.charge({ ...scope, tokens: 0 }, extraTokens, nowMs);
	}

	/**
	 * Reclaims grants whose isolate went silent: their slots come back; their requests and tokens
	 * stay charged, as spent (the isolate may have sent them).
	 */
	reclaim(nowMs: number): void {
		for (
			let grant = this.#ledger.popReclaimable(nowMs);
			grant;
			grant = this.#ledger.popReclaimable(nowMs)
		) {
			this.#hold(grant, grant.outstanding, -1);
		}
	}

	nextReclaimMs(): number | undefined {
		return this.#ledger.nextReclaimMs();
	}

	snapshot(): SavedGrant[] {
		return [...this.#ledger.values()].map((grant) => ({
			...grant,
			outstanding: { ...grant.outstanding },
		}));
	}

	/** Holds (`sign` 1) or stops holding (-1) `amount` in the grant's buckets and the slots. */
	#hold(grant: SavedGrant, amount: Quantity<PoolDimension>, sign: 1 | -1): void {
		const scopes = this.#scheduler.scopes;
		scopes.holdAllowance({ ...grant.scope, tokens: sign * amount.tokens }, sign * amount.requests);
		scopes.heldSlots += sign * amount.slots;
	}
}

/** A request an allowance admitted, over: reconciled and learned from like a lease's release. */
export interface EndedSpend {
	ticketId: string;
	scope: AllowanceScope;
	/** The estimate it spent from its grant. */
	tokens: number;
	/** The provider's count; undefined keeps the estimate charged. */
	actualTokens?: number;
	providerAnswered: boolean;
	reported?: ReportedLimits;
}

/** One isolate's batch: ended requests, grant reports, and asks for new grants. */
export interface AllowanceBatch {
	holder: string;
	ended: EndedSpend[];
	reports: PoolGrantReport[];
	asks: { scope: AllowanceScope; want: Quantity<PoolDimension> }[];
}

/** `open` false: the pool queues, is paused or failing; holders stop spending and give back. */
export interface AllowanceAnswer {
	grants: PoolGrant[];
	open: boolean;
}
