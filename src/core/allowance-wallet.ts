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

/**
 * One spend: each part from the grant it came from (a request's slot may come from another grant
 * than its request and tokens). `end` it when its work is over, so that reusable parts come back.
 */
export interface Spend<D extends string> {
	parts: { grantId: string; amount: Partial<Quantity<D>> }[];
	startedMs: number;
	scopeKey: string;
}

/** One scope's use: its rate, and how many of its spends are in flight at most. */
interface ScopeUse<D extends string> {
	window: RateMeter<D>;
	/** The last tenth of a window: a rate that jumps is seen within it. */
	recent: RateMeter<D>;
	inUse: number;
	/**
	 * The most in flight at once in this window and in the last (`peakSinceMs` starts this one),
	 * those turned away since the last ask for want of a part included.
	 */
	peak: number;
	previousPeak: number;
	peakSinceMs: number;
	turnedAway: number;
}

/** The recent pace is measured over this share of a window (a tenth). */
const RECENT_SHARES = 10;
/** ...when it counts at least this many spends. */
const RECENT_LEAST = 8;
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
	readonly #uses = new Map<string, ScopeUse<D>>();
	/** How long a spend holds its reusable parts, on average; until measured, those in flight tell. */
	#meanHoldMs: number | undefined;

	constructor(options: WalletOptions<D, S>) {
		this.#options = options;
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
	 * Spends `amount`, each dimension from the open grant for `scope` that ends soonest and holds
	 * all of that dimension's part, or nothing (undefined) when one has none: the caller then asks
	 * the authority as usual. Counts toward the rate.
	 */
	spend(scope: S, amount: Partial<Quantity<D>>, nowMs: number): Spend<D> | undefined {
		const key = this.#options.scopeKey(scope);
		const use = this.#use(key, nowMs);
		use.window.add(amount, nowMs);
		use.recent.add(amount, nowMs);
		const dimensions = Object.keys(amount) as D[];
		const sources: Held<D, S>[] = [];
		for (const dimension of dimensions) {
			const part = amount[dimension] ?? 0;
			let best: Held<D, S> | undefined;
			for (const held of this.#byScope.get(key) ?? []) {
				if (held.closed || nowMs >= held.spendUntilMs || held.left[dimension] < part) continue;
				if (!best || held.spendUntilMs < best.spendUntilMs) best = held;
			}
			if (!best) {
				use.turnedAway++;
				this.#notePeak(use, use.inUse + use.turnedAway, nowMs);
				return undefined;
			}
			sources.push(best);
		}
		use.inUse++;
		this.#notePeak(use, use.inUse, nowMs);
		const parts: Spend<D>["parts"] = [];
		for (const [index, dimension] of dimensions.entries()) {
			const held = sources[index] as Held<D, S>;
			const part = amount[dimension] ?? 0;
			held.left[dimension] -= part;
			const reusable = this.#options.reusable.includes(dimension);
			if (!reusable) held.used[dimension] += part;
			let entry = parts.find((candidate) => candidate.grantId === held.grant.id);
			if (!entry) {
				entry = { grantId: held.grant.id, amount: {} };
				parts.push(entry);
			}
			entry.amount[dimension] = part;
			// A grant waits for its final report until the reusable parts spent from it are back.
			if (reusable && part > 0) held.inUse++;
		}
		return { parts, startedMs: nowMs, scopeKey: key };
	}

	/** A spend's work is over: its reusable parts go back to their grant, or to the authority. */
	end(spend: Spend<D>, nowMs: number): void {
		const holdMs = Math.max(0, nowMs - spend.startedMs);
		this.#meanHoldMs =
			this.#meanHoldMs === undefined
				? holdMs
				: this.#meanHoldMs + HOLD_WEIGHT * (holdMs - this.#meanHoldMs);
		this.#use(spend.scopeKey, nowMs).inUse--;
		for (const { grantId, amount } of spend.parts) {
			const held = this.#held.get(grantId);
			if (!held) continue;
			for (const dimension of this.#options.reusable) {
				const part = amount[dimension] ?? 0;
				if (part === 0) continue;
				held.inUse--;
				if (held.closed) held.returned[dimension] += part;
				else held.left[dimension] += part;
			}
		}
	}

	/** A spend's work goes on (a long stream): its grants are reported in the next batch, alive. */
	renew(spend: Spend<D>): void {
		for (const { grantId } of spend.parts) {
			const held = this.#held.get(grantId);
			if (held) held.renew = true;
		}
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
			if (held.renew || (held.closed ? held.inUse === 0 : nowMs >= held.spendUntilMs)) return true;
			if (!isZero(held.used) || !isZero(held.returned)) return true;
		}
		return false;
	}

	/**
	 * Whether a grant has something to give back at nowMs: its window is over, or it is closed and
	 * either done with or holding slots its requests gave back since.
	 */
	returnsDue(nowMs: number): boolean {
		for (const held of this.#held.values()) {
			if (held.closed ? held.inUse === 0 || !isZero(held.returned) : nowMs >= held.spendUntilMs)
				return true;
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
	 * the open grants hold less than half of that, or end within half a window or within `leadMs`
	 * (the time a new grant takes to arrive); else undefined.
	 */
	want(scope: S, least: Partial<Quantity<D>>, nowMs: number, leadMs = 0): Quantity<D> | undefined {
		const { windowMs, reusable, dimensions } = this.#options;
		const key = this.#options.scopeKey(scope);
		const use = this.#use(key, nowMs);
		const expected = this.#expected(use, nowMs);
		const left = zeroOf(dimensions);
		const lastingMs = Math.max(windowMs / 2, leadMs);
		for (const held of this.#byScope.get(key) ?? []) {
			if (!held.closed && held.spendUntilMs - nowMs > lastingMs) addTo(left, held.left);
		}
		const wanted = zeroOf(dimensions);
		const { counted } = this.#options;
		wanted[counted] = Math.max(least[counted] ?? 0, Math.ceil(expected[counted]));
		let short = false;
		for (const dimension of dimensions) {
			const floor = least[dimension] ?? 0;
			if (reusable.includes(dimension)) {
				// Slots: what the expected requests keep busy on average (Little's law) and three
				// standard deviations more (their number in flight jumps around that mean, as a
				// Poisson count), or half again the most in flight lately; one more, at least `least`.
				const busy = (expected[this.#options.counted] * (this.#meanHoldMs ?? 0)) / windowMs;
				this.#notePeak(use, use.inUse, nowMs);
				const peak = Math.max(use.peak, use.previousPeak);
				const most = Math.max(busy + 3 * Math.sqrt(busy), 1.5 * peak);
				wanted[dimension] = Math.max(floor, Math.ceil(most) + 1);
				if (left[dimension] < 1) short = true;
			} else {
				// As much per request as lately, for every request wanted: no part runs out first.
				const perCounted = expected[counted] > 0 ? expected[dimension] / expected[counted] : 0;
				const scaled = Math.ceil(Math.max(expected[dimension], perCounted * wanted[counted]));
				wanted[dimension] = Math.max(floor, scaled);
				if (left[dimension] < wanted[dimension] / 2 || left[dimension] < floor) short = true;
			}
		}
		if (!short) return undefined;
		use.turnedAway = 0;
		return wanted;
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

	/**
	 * Use expected over the next window: the last window's, or the last tenth of a window's at its
	 * pace when that is more and counts enough spends to say so (a rate that jumps gets a grant of
	 * its new size a round trip later; one spend in the last tenth is no rate of ten a window).
	 */
	#expected(use: ScopeUse<D>, nowMs: number): Quantity<D> {
		const expected = use.window.recent(nowMs);
		const recent = use.recent.recent(nowMs);
		if (recent[this.#options.counted] < RECENT_LEAST) return expected;
		for (const dimension of this.#options.dimensions) {
			expected[dimension] = Math.max(expected[dimension], recent[dimension] * RECENT_SHARES);
		}
		return expected;
	}

	#notePeak(use: ScopeUse<D>, inFlight: number, nowMs: number): void {
		const { windowMs } = this.#options;
		if (nowMs >= use.peakSinceMs + windowMs) {
			use.previousPeak = nowMs < use.peakSinceMs + 2 * windowMs ? use.peak : 0;
			use.peak = 0;
			use.peakSinceMs = nowMs;
		}
		use.peak = Math.max(use.peak, inFlight);
	}

	#use(key: string, nowMs: number): ScopeUse<D> {
		let use = this.#uses.get(key);
		if (!use) {
			const { dimensions, windowMs } = this.#options;
			use = {
				window: new RateMeter(dimensions, windowMs),
				recent: new RateMeter(dimensions, windowMs / RECENT_SHARES),
				inUse: 0,
				peak: 0,
				previousPeak: 0,
				peakSinceMs: nowMs,
				turnedAway: 0,
			};
			this.#uses.set(key, use);
		}
		return use;
	}
}

function isZero<D extends string>(quantity: Quantity<D>): boolean {
	return Object.values<number>(quantity).every((value) => value === 0);
}
