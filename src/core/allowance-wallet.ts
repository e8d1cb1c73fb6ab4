// The holder's side of allowances: the grants one holder (a Worker isolate) has, spent with no
// round trip; what it used and what it gives back, gathered into reports; and how much to ask
// for next, from its recent rate. Pure: time is passed in.
import {
	addTo,
	type Grant,
	type GrantReport,
	type Quantity,
	RateMeter,
	zeroOf,
} from "./allowance.ts";

export interface WalletOptions<D extends string, S> {
	dimensions: readonly D[];
	/** Dimensions a spend gives back when it ends (concurrency slots), rather than using them up. */
	reusable: readonly D[];
	/** The dimension each spend counts one in (requests): reusable ones are sized from its rate. */
	counted: D;
	scopeKey(scope: S): string;
	/** How long a grant lasts: asks are sized to the use expected over this long. */
	windowMs: number;
}

/** One spend from a grant; `end` it when its work is over, so that reusable parts come back. */
export interface Spend<D extends string> {
	grantId: string;
	amount: Partial<Quantity<D>>;
	startedMs: number;
}

/** Weight of the latest spend's duration in the running mean of how long a spend holds its slot. */
const HOLD_WEIGHT = 0.1;

interface Held<D extends string, S> {
	grant: Grant<D, S>;
	/** On the holder's clock: no spend at or after it. */
	spendUntilMs: number;
	left: Quantity<D>;
	used: Quantity<D>;
	returned: Quantity<D>;
	inUse: number;
	closed: boolean;
	/** A spend's work goes on: the next report says so, so that the grant is not reclaimed. */
	renew: boolean;
}

export class AllowanceWallet<D extends string, S> {
	readonly #options: WalletOptions<D, S>;
	readonly #held = new Map<string, Held<D, S>>();
	readonly #byScope = new Map<string, Set<Held<D, S>>>();
	readonly #meters = new Map<string, RateMeter<D>>();
	/** How long a spend holds its reusable parts, on average; a whole window until measured. */
	#meanHoldMs: number;

	constructor(options: WalletOptions<D, S>) {
		this.#options = options;
		this.#meanHoldMs = options.windowMs;
	}

	/** Adds a grant; `spendUntilMs` is on the holder's clock (no later than the grant's own). */
	add(grant: Grant<D, S>, spendUntilMs: number): void {
		const { dimensions } = this.#options;
		const held: Held<D, S> = {
			grant,
			spendUntilMs,
			left: { ...grant.amount },
			used: zeroOf(dimensions),
			returned: zeroOf(dimensions),
			inUse: 0,
			closed: false,
			renew: false,
		};
		this.#held.set(grant.id, held);
		const key = this.#options.scopeKey(grant.scope);
		let set = this.#byScope.get(key);
		if (!set) {
			set = new Set();
			this.#byScope.set(key, set);
		}
		set.add(held);
	}

	/**
	 * Spends `amount` from the open grant for `scope` that ends soonest and holds all of it, or
	 * nothing (undefined): the caller then asks the authority as usual. Counts toward the rate.
	 */
	spend(scope: S, amount: Partial<Quantity<D>>, nowMs: number): Spend<D> | undefined {
		const key = this.#options.scopeKey(scope);
		this.#meter(key).add(amount, nowMs);
		let best: Held<D, S> | undefined;
		for (const held of this.#byScope.get(key) ?? []) {
			if (held.closed || nowMs >= held.spendUntilMs || !holds(held.left, amount)) continue;
			if (!best || held.spendUntilMs < best.spendUntilMs) best = held;
		}
		if (!best) return undefined;
		for (const dimension of Object.keys(amount) as D[]) {
			const part = amount[dimension] ?? 0;
			best.left[dimension] -= part;
			if (!this.#options.reusable.includes(dimension)) best.used[dimension] += part;
		}
		best.inUse++;
		return { grantId: best.grant.id, amount, startedMs: nowMs };
	}

	/** A spend's work is over: its reusable parts go back to its grant, or to the authority. */
	end(spend: Spend<D>, nowMs: number): void {
		const holdMs = Math.max(0, nowMs - spend.startedMs);
		this.#meanHoldMs += HOLD_WEIGHT * (holdMs - this.#meanHoldMs);
		const held = this.#held.get(spend.grantId);
		if (!held) return;
		held.inUse--;
		for (const dimension of this.#options.reusable) {
			const part = spend.amount[dimension] ?? 0;
			if (held.closed) held.returned[dimension] += part;
			else held.left[dimension] += part;
		}
	}

	/** A spend's work goes on (a long stream): its grant is reported in the next batch, alive. */
	renew(spend: Spend<D>): void {
		const held = this.#held.get(spend.grantId);
		if (held) held.renew = true;
	}

	/** Stops spending from every grant (the authority asked for them back); their rest goes back. */
	closeAll(): void {
		for (const held of this.#held.values()) this.#close(held);
	}

	/** Closes the grants past their time, and reports every grant with something to say. */
	reports(nowMs: number): GrantReport<D>[] {
		const reports: GrantReport<D>[] = [];
		for (const held of this.#held.values()) {
			if (nowMs >= held.spendUntilMs) this.#close(held);
			const final = held.closed && held.inUse === 0;
			if (!final && !held.renew && isZero(held.used) && isZero(held.returned)) continue;
			held.renew = false;
			reports.push({
				grantId: held.grant.id,
				used: held.used,
				returned: held.returned,
				final,
			});
			held.used = zeroOf(this.#options.dimensions);
			held.returned = zeroOf(this.#options.dimensions);
			if (final) this.#forget(held);
		}
		return reports;
	}

	/** Whether any grant has something to report at nowMs (spent, given back, or over). */
	hasReports(nowMs: number): boolean {
		for (const held of this.#held.values()) {
			if (nowMs >= held.spendUntilMs || held.closed || held.renew) return true;
			if (!isZero(held.used) || !isZero(held.returned)) return true;
		}
		return false;
	}

	/** Spends not yet ended, over every grant. */
	get inUse(): number {
		let inUse = 0;
		for (const held of this.#held.values()) inUse += held.inUse;
		return inUse;
	}

	/** The earliest end of a spend window among the grants still open, if any. */
	nextSpendEndMs(): number | undefined {
		let earliest: number | undefined;
		for (const held of this.#held.values()) {
			if (!held.closed && (earliest === undefined || held.spendUntilMs < earliest)) {
				earliest = held.spendUntilMs;
			}
		}
		return earliest;
	}

	/**
	 * What to ask for `scope` now: the use expected over a grant's window (at least `least`), when
	 * the open grants hold less than half of that or end within half a window; else undefined.
	 */
	want(scope: S, least: Partial<Quantity<D>>, nowMs: number): Quantity<D> | undefined {
		const { windowMs, reusable, dimensions } = this.#options;
		const key = this.#options.scopeKey(scope);
		const expected = this.#meter(key).recent(nowMs);
		const left = zeroOf(dimensions);
		let inUse = 0;
		for (const held of this.#byScope.get(key) ?? []) {
			if (held.closed) continue;
			inUse += held.inUse;
			if (held.spendUntilMs - nowMs > windowMs / 2) addTo(left, held.left);
		}
		const wanted = zeroOf(dimensions);
		let short = false;
		for (const dimension of dimensions) {
			const floor = least[dimension] ?? 0;
			if (reusable.includes(dimension)) {
				// Slots: what the expected requests keep busy (Little's law) or are in use now, and
				// half again, at least `least`.
				const busy = (expected[this.#options.counted] * this.#meanHoldMs) / windowMs;
				wanted[dimension] = Math.max(floor, Math.ceil(Math.max(busy, inUse) * 1.5) + 1);
				if (left[dimension] < 1) short = true;
			} else {
				wanted[dimension] = Math.max(floor, Math.ceil(expected[dimension]));
				if (left[dimension] < wanted[dimension] / 2 || left[dimension] < floor) short = true;
			}
		}
		return short ? wanted : undefined;
	}

	#close(held: Held<D, S>): void {
		if (held.closed) return;
		held.closed = true;
		addTo(held.returned, held.left);
		held.left = zeroOf(this.#options.dimensions);
	}

	#forget(held: Held<D, S>): void {
		this.#held.delete(held.grant.id);
		this.#byScope.get(this.#options.scopeKey(held.grant.scope))?.delete(held);
	}

	#meter(key: string): RateMeter<D> {
		let meter = this.#meters.get(key);
		if (!meter) {
			meter = new RateMeter(this.#options.dimensions, this.#options.windowMs);
			this.#meters.set(key, meter);
		}
		return meter;
	}
}

function holds<D extends string>(left: Quantity<D>, amount: Partial<Quantity<D>>): boolean {
	return (Object.keys(amount) as D[]).every(
		(dimension) => left[dimension] >= (amount[dimension] ?? 0),
	);
}

function isZero<D extends string>(quantity: Quantity<D>): boolean {
	return Object.values<number>(quantity).every((value) => value === 0);
}
