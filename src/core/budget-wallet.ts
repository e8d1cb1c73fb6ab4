// The isolate's side of budget allowances: grants from a tenant's budget authority, spent by
// requests' estimates with no round trip; each request's actual charge and what it did not use
// are reported when it ends, the rest of a grant when its spend window closes. Pure: time is
// passed in. (Issue 13's AllowanceWallet reports a spend when it is made; a budget's charge is
// known only when the request ends, hence this holder.)
import { RateMeter } from "./allowance.ts";
import type { BudgetGrant, GrantScope } from "./budget.ts";
import type { Charge } from "./budget-cost.ts";

interface Held {
	grant: BudgetGrant;
	key: string;
	left: Charge;
	/** On this isolate's clock. */
	spendUntilMs: number;
	inFlight: number;
	closed: boolean;
}

/** A request admitted from a grant: settle it with `settled` when it ends. */
export interface WalletSpend {
	grantId: string;
	scope: GrantScope;
	estimate: Charge;
	/** What the grant still holds after this spend. */
	left: Charge;
}

/** What goes back to the authority when a grant's spend window closes. */
export interface GrantReturn {
	grantId: string;
	left: Charge;
	/** Nothing more will be reported on it. */
	final: boolean;
}

export class BudgetWallet {
	readonly #held = new Map<string, Held>();
	readonly #byKey = new Map<string, Set<Held>>();
	/** Keys whose ask for a grant is on its way: one at a time per key. */
	readonly #asking = new Set<string>();
	readonly #meters = new Map<string, RateMeter<"requests">>();
	readonly #windowMs: number;
	readonly #leastRequests: number;

	/** Grants last `windowMs`; each is sized to the requests expected in it, at least `leastRequests`. */
	constructor(windowMs: number, leastRequests: number) {
		this.#windowMs = windowMs;
		this.#leastRequests = leastRequests;
	}

	/** Holds a grant for `key` (a tenant and end user); `spendUntilMs` on this isolate's clock. */
	add(key: string, grant: BudgetGrant, spendUntilMs: number): void {
		const held: Held = {
			grant,
			key,
			left: { tokens: grant.amount.tokens, nanoUsd: grant.amount.nanoUsd },
			spendUntilMs,
			inFlight: 0,
			closed: false,
		};
		this.#held.set(grant.id, held);
		let set = this.#byKey.get(key);
		if (!set) {
			set = new Set();
			this.#byKey.set(key, set);
		}
		set.add(held);
	}

	/** The ask `want` returned has been answered (with a grant or not). */
	answered(key: string): void {
		this.#asking.delete(key);
	}

	/** Spends `estimate` from `key`'s open grant, or nothing (undefined): ask the authority. */
	spend(key: string, estimate: Charge, nowMs: number): WalletSpend | undefined {
		this.#meter(key).add({ requests: 1 }, nowMs);
		let held: Held | undefined;
		for (const candidate of this.#byKey.get(key) ?? []) {
			if (candidate.closed || nowMs >= candidate.spendUntilMs) continue;
			if (candidate.left.tokens < estimate.tokens || candidate.left.nanoUsd < estimate.nanoUsd)
				continue;
			if (!held || candidate.spendUntilMs < held.spendUntilMs) held = candidate;
		}
		if (!held) return undefined;
		held.left.tokens -= estimate.tokens;
		held.left.nanoUsd -= estimate.nanoUsd;
		held.inFlight++;
		return { grantId: held.grant.id, scope: held.grant.scope, estimate, left: { ...held.left } };
	}

	/**
	 * What to ask for `key` with the next admission: the recent requests' worth of `estimate` (half
	 * again, at least leastRequests), when the open grants hold less than half of that (counting
	 * none that closes within half a window); undefined when they hold enough or an ask is on its
	 * way. Call `answered` once the ask has its answer.
	 */
	want(key: string, estimate: Charge, nowMs: number): Charge | undefined {
		if (this.#asking.has(key)) return undefined;
		const requests = Math.max(
			this.#leastRequests,
			Math.ceil(this.#meter(key).recent(nowMs).requests * 1.5),
		);
		const left = { tokens: 0, nanoUsd: 0 };
		for (const held of this.#byKey.get(key) ?? []) {
			if (held.closed || held.spendUntilMs - nowMs <= this.#windowMs / 2) continue;
			left.tokens += held.left.tokens;
			left.nanoUsd += held.left.nanoUsd;
		}
		const wanted = { tokens: estimate.tokens * requests, nanoUsd: estimate.nanoUsd * requests };
		if (left.tokens >= wanted.tokens / 2 && left.nanoUsd >= wanted.nanoUsd / 2) return undefined;
		this.#asking.add(key);
		return wanted;
	}

	/** A spend's request ended: a closed grant with nothing in flight is then done (final). */
	ended(grantId: string): GrantReturn | undefined {
		const held = this.#held.get(grantId);
		if (!held) return undefined;
		held.inFlight--;
		if (!held.closed || held.inFlight > 0) return undefined;
		this.#forget(held);
		return { grantId, left: { tokens: 0, nanoUsd: 0 }, final: true };
	}

	/** Closes a grant whose spend window is over: its rest goes back (final once nothing is in flight). */
	close(grantId: string): GrantReturn | undefined {
		const held = this.#held.get(grantId);
		if (!held || held.closed) return undefined;
		held.closed = true;
		const left = held.left;
		held.left = { tokens: 0, nanoUsd: 0 };
		const final = held.inFlight === 0;
		if (final) this.#forget(held);
		return { grantId, left, final };
	}

	#meter(key: string): RateMeter<"requests"> {
		let meter = this.#meters.get(key);
		if (!meter) {
			meter = new RateMeter(["requests"], this.#windowMs);
			this.#meters.set(key, meter);
		}
		return meter;
	}

	#forget(held: Held): void {
		this.#held.delete(held.grant.id);
		const set = this.#byKey.get(held.key);
		set?.delete(held);
		if (set?.size === 0) this.#byKey.delete(held.key);
	}
}
