// One tenant's budget book: what it and each of its end users used and hold reserved in the
// current day and month windows; admission (reserve the estimate, downgrade past the threshold,
// refuse past the limit) and settlement (charge what the provider reported). Pure: time is passed in.
import { AllowanceLedger, type Grant, type HeldGrant } from "./allowance.ts";
import type { Charge } from "./budget-cost.ts";
import { budgetWindows } from "./budget-windows.ts";

export interface BudgetLimits {
	tokensPerDay?: number;
	tokensPerMonth?: number;
	costPerDayUsd?: number;
	costPerMonthUsd?: number;
}

export interface BudgetPolicy {
	tenant: BudgetLimits;
	/** This end user's limits (the tenant's perUser, or the user's own); none: no user budget. */
	user?: BudgetLimits;
	downgradeAt: number;
	timeZone: string;
}

/** A model the request may run on, and its estimated charge there. */
export interface Candidate {
	model: string;
	estimate: Charge;
	/** Of estimate.tokens, the prompt's (the rest is the output reserved). */
	promptTokens: number;
}

export interface BudgetAsk {
	id: string;
	/** The end user, when the request names one. */
	user?: string;
	/** What the caller asked for, then the cheaper model its downgrade maps it to, if any. */
	requested: Candidate;
	downgrade?: Candidate;
	policy: BudgetPolicy;
}

/** What is left after a decision, over the budgets that apply (undefined: no such budget). */
export interface Remaining {
	tokens?: number;
	nanoUsd?: number;
	/** When the tightest of them resets. */
	resetAtMs?: number;
}

export type BudgetAdmission =
	| {
			kind: "reserved";
			model: string;
			downgraded: boolean;
			remaining: Remaining;
			reservation: Reservation;
	  }
	| {
			kind: "exhausted";
			/** Which budget, in words: `tokensPerDay of user "alice"`. */
			budget: string;
			/**
			 * The rest is held by requests in flight (and allowances), which settle within seconds:
			 * retry soon, not at the reset.
			 */
			held: boolean;
			retryAfterMs: number;
			resetAtMs: number;
			remaining: Remaining;
	  };

export interface Reservation {
	id: string;
	user: string;
	model: string;
	estimate: Charge;
	promptTokens: number;
	/** The windows it is charged to: those it was admitted in. */
	day: string;
	month: string;
	reservedAtMs: number;
}

/** A settled request, for the usage ledger. */
export interface Settled {
	reservation: Reservation;
	charged: Charge;
}

export type Dimension = "tokens" | "nanoUsd";
const DIMENSIONS: readonly Dimension[] = ["tokens", "nanoUsd"];

/** Where an allowance may be spent: one end user's (or the tenant's own, "") requests in its windows. */
export interface GrantScope {
	user: string;
	day: string;
	month: string;
}

export type BudgetGrant = Grant<Dimension, GrantScope>;
export type HeldBudgetGrant = HeldGrant<Dimension, GrantScope>;

/** Asked with an admission: reserve `amount` more for the asking isolate to spend by itself. */
export interface GrantAsk {
	id: string;
	amount: Charge;
	spendForMs: number;
	reclaimAfterMs: number;
}

interface Check {
	key: string;
	dimension: Dimension;
	limit: number;
	resetAtMs: number;
	label: string;
}

/** When to retry a request refused only for what requests in flight hold. */
export const HELD_RETRY_AFTER_MS = 1_000;

/** The most of a budget's headroom below its downgrade threshold one allowance may take. */
const GRANT_SHARE = 0.25;

/** The tenant's own scope; an end user's is `u:<name>`. */
const TENANT = "";
const userScope = (user: string) => `u:${user}`;
const slot = (scope: string, window: string) => `${scope}\u0000${window}`;

export class BudgetBook {
	/** used and reserved per scope and window, keyed by slot(). */
	readonly #used = new Map<string, Charge>();
	readonly #reserved = new Map<string, Charge>();
	readonly #reservations = new Map<string, Reservation>();
	/** Allowances held by isolates: part of `#reserved` until spent or given back. */
	readonly #grants: AllowanceLedger<Dimension, GrantScope>;

	constructor(savedGrants: HeldBudgetGrant[] = []) {
		this.#grants = new AllowanceLedger(DIMENSIONS, savedGrants);
		for (const grant of savedGrants) {
			const { user, day, month } = grant.scope;
			for (const key of slotsOf(user, day, month))
				add(this.#reserved, key, asCharge(grant.outstanding), 1);
		}
	}

	get grants(): IterableIterator<HeldBudgetGrant> {
		return this.#grants.values();
	}

	grantOf(id: string): HeldBudgetGrant | undefined {
		return this.#grants.get(id);
	}

	get reservations(): IterableIterator<Reservation> {
		return this.#reservations.values();
	}

	/** Adds settled usage (e.g. read back from the ledger after a restart). */
	addUsed(user: string, day: string, charge: Charge): void {
		for (const key of slotsOf(user, day, day.slice(0, 7))) add(this.#used, key, charge, 1);
	}

	/** Holds a reservation again (read back after a restart). */
	restore(reservation: Reservation): void {
		this.#reservations.set(reservation.id, reservation);
		const { user, day, month, estimate } = reservation;
		for (const key of slotsOf(user, day, month)) add(this.#reserved, key, estimate, 1);
	}

	admit(ask: BudgetAsk, nowMs: number): BudgetAdmission {
		const windows = budgetWindows(nowMs, ask.policy.timeZone);
		const checks = this.#checks(ask, windows);
		const level = (check: Check) =>
			(this.#used.get(check.key)?.[check.dimension] ?? 0) +
			(this.#reserved.get(check.key)?.[check.dimension] ?? 0);
		const pastThreshold = checks.some(
			(check) => level(check) >= check.limit * ask.policy.downgradeAt,
		);
		const chosen = ask.downgrade && pastThreshold ? ask.downgrade : ask.requested;
		let refusal: Check | undefined;
		// Whether the request would fit what is used, were it not for what others hold reserved.
		let onlyHeld = true;
		for (const check of checks) {
			const estimate = chosen.estimate[check.dimension];
			if (level(check) + estimate <= check.limit) continue;
			if ((this.#used.get(check.key)?.[check.dimension] ?? 0) + estimate > check.limit) {
				onlyHeld = false;
			}
			if (!refusal || check.resetAtMs > refusal.resetAtMs) refusal = check;
		}
		if (refusal) {
			return {
				kind: "exhausted",
				budget: refusal.label,
				held: onlyHeld,
				retryAfterMs: onlyHeld ? HELD_RETRY_AFTER_MS : Math.max(0, refusal.resetAtMs - nowMs),
				resetAtMs: refusal.resetAtMs,
				remaining: remainingOf(checks, level),
			};
		}
		const reservation: Reservation = {
			id: ask.id,
			user: ask.user ?? "",
			model: chosen.model,
			estimate: chosen.estimate,
			promptTokens: chosen.promptTokens,
			day: windows.day,
			month: windows.month,
			reservedAtMs: nowMs,
		};
		this.restore(reservation);
		this.#forgetOldWindows(windows.day, windows.month);
		return {
			kind: "reserved",
			model: chosen.model,
			downgraded: chosen !== ask.requested,
			remaining: remainingOf(checks, level),
			reservation,
		};
	}

	/**
	 * An allowance for the admitted request's isolate: up to `want.amount`, never more than
	 * GRANT_SHARE of what any budget of the request has left below its downgrade threshold (so
	 * nothing spent from it can need a downgrade or pass a limit, and isolates asking one after
	 * another leave room for each other). Undefined when not even one more such request fits.
	 */
	grant(ask: BudgetAsk, want: GrantAsk, nowMs: number): BudgetGrant | undefined {
		const windows = budgetWindows(nowMs, ask.policy.timeZone);
		let share = 1;
		for (const check of this.#checks(ask, windows)) {
			const level =
				(this.#used.get(check.key)?.[check.dimension] ?? 0) +
				(this.#reserved.get(check.key)?.[check.dimension] ?? 0);
			const headroom = check.limit * ask.policy.downgradeAt - level;
			const wanted = want.amount[check.dimension];
			if (wanted > 0) share = Math.min(share, (headroom * GRANT_SHARE) / wanted);
		}
		const amount = {
			tokens: Math.floor(want.amount.tokens * share),
			nanoUsd: Math.floor(want.amount.nanoUsd * share),
		};
		const one = ask.requested.estimate;
		if (amount.tokens < one.tokens || amount.nanoUsd < one.nanoUsd) return undefined;
		const scope = { user: ask.user ?? "", day: windows.day, month: windows.month };
		const grant = this.#grants.open({
			id: want.id,
			holder: "",
			scope,
			amount,
			spendUntilMs: nowMs + want.spendForMs,
			reclaimAtMs: nowMs + want.spendForMs + want.reclaimAfterMs,
		});
		for (const key of slotsOf(scope.user, scope.day, scope.month))
			add(this.#reserved, key, amount, 1);
		return grant;
	}

	/**
	 * A request its isolate admitted from allowance `grantId` has ended: `actual` is charged, and
	 * what it reserved beyond that (`estimate − actual`) goes back to the budget.
	 */
	settleSpend(grantId: string, scope: GrantScope, estimate: Charge, actual: Charge): void {
		const spent = {
			tokens: Math.min(actual.tokens, estimate.tokens),
			nanoUsd: Math.min(actual.nanoUsd, estimate.nanoUsd),
		};
		const returned = {
			tokens: estimate.tokens - spent.tokens,
			nanoUsd: estimate.nanoUsd - spent.nanoUsd,
		};
		const moved = this.#grants.report({ grantId, used: spent, returned, final: false });
		for (const key of slotsOf(scope.user, scope.day, scope.month)) {
			// A grant already reclaimed holds nothing more: the charge stands on its own.
			if (moved) add(this.#reserved, key, asCharge(moved.used), -1);
			if (moved) add(this.#reserved, key, asCharge(moved.back), -1);
			add(this.#used, key, actual, 1);
		}
	}

	/** The isolate gives back what it did not spend; `final`: it holds nothing more of the grant. */
	returnGrant(grantId: string, left: Charge, final: boolean): void {
		const grant = this.#grants.get(grantId);
		if (!grant) return;
		const before = asCharge(grant.outstanding);
		const moved = this.#grants.report({ grantId, used: {}, returned: { ...left }, final });
		const freed = final ? before : asCharge(moved?.back ?? { tokens: 0, nanoUsd: 0 });
		const { user, day, month } = grant.scope;
		for (const key of slotsOf(user, day, month)) add(this.#reserved, key, freed, -1);
	}

	/** Frees the grants whose holder never gave them back by their reclaim time. */
	reclaimGrants(nowMs: number): HeldBudgetGrant[] {
		const reclaimed: HeldBudgetGrant[] = [];
		for (
			let grant = this.#grants.popReclaimable(nowMs);
			grant;
			grant = this.#grants.popReclaimable(nowMs)
		) {
			const { user, day, month } = grant.scope;
			for (const key of slotsOf(user, day, month))
				add(this.#reserved, key, asCharge(grant.outstanding), -1);
			reclaimed.push(grant);
		}
		return reclaimed;
	}

	nextGrantReclaimMs(): number | undefined {
		return this.#grants.nextReclaimMs();
	}

	/**
	 * Ends a reservation: `actual` is charged in its place (undefined keeps the estimate: nothing
	 * reported what was used). Undefined when the reservation is unknown (already settled).
	 */
	settle(id: string, actual: Charge | undefined): Settled | undefined {
		const reservation = this.#reservations.get(id);
		if (!reservation) return undefined;
		this.#reservations.delete(id);
		const { user, day, month, estimate } = reservation;
		const charged = actual ?? estimate;
		for (const key of slotsOf(user, day, month)) {
			add(this.#reserved, key, estimate, -1);
			add(this.#used, key, charged, 1);
		}
		return { reservation, charged };
	}

	/** Settles at their estimate the reservations older than `maxAgeMs` (their holder vanished). */
	reclaim(nowMs: number, maxAgeMs: number): Settled[] {
		const settled: Settled[] = [];
		for (const reservation of [...this.#reservations.values()]) {
			if (nowMs - reservation.reservedAtMs < maxAgeMs) continue;
			const done = this.settle(reservation.id, undefined);
			if (done) settled.push(done);
		}
		return settled;
	}

	/** Used and reserved in the windows of `nowMs`, for the tenant or one end user. */
	level(user: string | undefined, nowMs: number, timeZone: string) {
		const windows = budgetWindows(nowMs, timeZone);
		const scope = user === undefined ? TENANT : userScope(user);
		const of = (map: Map<string, Charge>, window: string) =>
			map.get(slot(scope, window)) ?? { tokens: 0, nanoUsd: 0 };
		return {
			windows,
			day: { used: of(this.#used, windows.day), reserved: of(this.#reserved, windows.day) },
			month: { used: of(this.#used, windows.month), reserved: of(this.#reserved, windows.month) },
		};
	}

	#checks(ask: BudgetAsk, windows: ReturnType<typeof budgetWindows>): Check[] {
		const checks: Check[] = [];
		const scopes: [string, BudgetLimits | undefined, string][] = [
			[TENANT, ask.policy.tenant, "of the tenant"],
		];
		if (ask.user !== undefined) {
			scopes.push([userScope(ask.user), ask.policy.user, `of user ${JSON.stringify(ask.user)}`]);
		}
		for (const [scope, limits, owner] of scopes) {
			if (!limits) continue;
			const day = { key: slot(scope, windows.day), resetAtMs: windows.dayResetMs };
			const month = { key: slot(scope, windows.month), resetAtMs: windows.monthResetMs };
			const push = (
				window: typeof day,
				dimension: Dimension,
				limit: number | undefined,
				name: string,
			) => {
				if (limit !== undefined)
					checks.push({ ...window, dimension, limit, label: `${name} ${owner}` });
			};
			push(day, "tokens", limits.tokensPerDay, "tokensPerDay");
			push(month, "tokens", limits.tokensPerMonth, "tokensPerMonth");
			push(day, "nanoUsd", usd(limits.costPerDayUsd), "costPerDayUsd");
			push(month, "nanoUsd", usd(limits.costPerMonthUsd), "costPerMonthUsd");
		}
		return checks;
	}

	#currentDay = "";

	/** Drops the counts of windows that have ended, once a new day starts. */
	#forgetOldWindows(day: string, month: string): void {
		if (day === this.#currentDay) return;
		this.#currentDay = day;
		for (const map of [this.#used, this.#reserved]) {
			for (const key of [...map.keys()]) {
				const window = key.slice(key.indexOf("\u0000") + 1);
				const current = window.length === 7 ? window === month : window === day;
				// A reservation still open keeps its (older) windows until it settles.
				if (!current && !(map === this.#reserved && (map.get(key)?.tokens ?? 0) > 0)) {
					map.delete(key);
				}
			}
		}
	}
}

function asCharge(quantity: { tokens: number; nanoUsd: number }): Charge {
	return { tokens: quantity.tokens, nanoUsd: quantity.nanoUsd };
}

function usd(value: number | undefined): number | undefined {
	return value === undefined ? undefined : Math.round(value * 1e9);
}

function slotsOf(user: string, day: string, month: string): string[] {
	const keys = [slot(TENANT, day), slot(TENANT, month)];
	if (user !== "") keys.push(slot(userScope(user), day), slot(userScope(user), month));
	return keys;
}

function add(map: Map<string, Charge>, key: string, charge: Charge, sign: 1 | -1): void {
	const into = map.get(key) ?? { tokens: 0, nanoUsd: 0 };
	into.tokens += sign * charge.tokens;
	into.nanoUsd += sign * charge.nanoUsd;
	map.set(key, into);
}

function remainingOf(checks: Check[], level: (check: Check) => number): Remaining {
	const remaining: Remaining = {};
	let tightest = Number.POSITIVE_INFINITY;
	for (const check of checks) {
		const left = Math.max(0, check.limit - level(check));
		const field = check.dimension;
		remaining[field] = Math.min(remaining[field] ?? Number.POSITIVE_INFINITY, left);
		if (left / check.limit < tightest) {
			tightest = left / check.limit;
			remaining.resetAtMs = check.resetAtMs;
		}
	}
	return remaining;
}
