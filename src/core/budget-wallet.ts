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
	readonly #byKey = new Map<string, Held>();
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
		this.#byKey.set(key, held);
	}

	/** Spends `estimate` from `key`'s open grant, or nothing (undefined): ask the authority. */
	spend(key: string, estimate: Charge, nowMs: number): WalletSpend | undefined {
		this.#meter(key).add({ requests: 1 }, nowMs);
		const held = this.#byKey.get(key);
		if (!held || held.closed || nowMs >= held.spendUntilMs) return undefined;
		if (held.left.tokens < estimate.tokens || held.left.nanoUsd < estimate.nanoUsd)
			return undefined;
		held.left.tokens -= estimate.tokens;
		held.left.nanoUsd -= estimate.nanoUsd;
		held.inFlight++;
		return { grantId: held.grant.id, scope: held.grant.scope, estimate, left: { ...held.left } };
	}

	/**
	 * What to ask for `key` with the next admission: the recent requests' worth of `estimate` (half
	 * again, at least leastRequests), when the open grant holds less than half of that or closes
	 * within half a window; undefined when it holds enough.
	 */
	want(key: string, estimate: Charge, nowMs: number): Charge | undefined {
		const requests = Math.max(
			this.#leastRequests,
			Math.ceil(this.#meter(key).recent(nowMs).requests * 1.5),
		);
		const held = this.#byKey.get(key);
		const enough =
			held !== undefined &&
			!held.closed &&
			held.spendUntilMs - nowMs > this.#windowMs / 2 &&
			held.left.tokens >= (estimate.tokens * requests) / 2 &&
			held.left.nanoUsd >= (estimate.nanoUsd * requests) / 2;
		if (enough) return undefined;
		return { tokens: estimate.tokens * requests, nanoUsd: estimate.nanoUsd * requests };
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
		if (this.#byKey.get(held.key) === held) this.#byKey.delete(held.key);
	}
}
