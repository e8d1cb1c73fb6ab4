// Allowances, both sides: an authority reserves a quantity (requests, tokens, slots; budget tokens
// or dollars) for one holder at grant time; the holder spends it with no round trip, and gives back
// what it did not use; the authority reclaims what a silent holder never gave back. Pure.
import { MinHeap } from "./min-heap.ts";

/** An amount in each of an authority's dimensions, e.g. { requests: 3, tokens: 900, slots: 2 }. */
export type Quantity<D extends string> = Record<D, number>;

export interface Grant<D extends string, S> {
	id: string;
	holder: string;
	/** What the grant may be spent on (for a pool: a tenant and a model). */
	scope: S;
	/** Reserved in the authority at grant time. */
	amount: Quantity<D>;
	/** The holder spends nothing from it after this time... */
	spendUntilMs: number;
	/** ...and whatever it has not given back by this time is reclaimed. */
	reclaimAtMs: number;
}

/** A grant's part the holder has neither spent for good nor given back. */
export interface HeldGrant<D extends string, S> extends Grant<D, S> {
	outstanding: Quantity<D>;
}

/**
 * A holder's report on one grant: `used` is spent for good (a request sent), `returned` comes back
 * to the authority (unused, or a slot whose request ended). `final`: the holder is done with it.
 */
export interface GrantReport<D extends string> {
	grantId: string;
	used: Partial<Quantity<D>>;
	returned: Partial<Quantity<D>>;
	final: boolean;
}

export function addTo<D extends string>(into: Quantity<D>, from: Partial<Quantity<D>>): void {
	for (const dimension of Object.keys(from) as D[]) {
		into[dimension] = (into[dimension] ?? 0) + (from[dimension] ?? 0);
	}
}

export function zeroOf<D extends string>(dimensions: readonly D[]): Quantity<D> {
	return Object.fromEntries(dimensions.map((dimension) => [dimension, 0])) as Quantity<D>;
}

/** Past this many closed grants still in the reclaim index, it is rebuilt from the open ones. */
const HEAP_GARBAGE_ALLOWANCE = 1024;

/** The authority's side: every grant not yet given back or reclaimed, and their sum. */
export class AllowanceLedger<D extends string, S> {
	readonly #dimensions: readonly D[];
	readonly #grants = new Map<string, HeldGrant<D, S>>();
	// Lazy deletion: a closed or renewed grant's entry stays here until it surfaces.
	readonly #reclaims = new MinHeap<{ grant: HeldGrant<D, S>; atMs: number }>((entry) => entry.atMs);
	readonly #outstanding: Quantity<D>;

	constructor(dimensions: readonly D[], saved: HeldGrant<D, S>[] = []) {
		this.#dimensions = dimensions;
		this.#outstanding = zeroOf(dimensions);
		for (const grant of saved) this.#hold(grant);
	}

	/** What all holders hold now, in each dimension: part of every bucket's level. */
	get outstanding(): Readonly<Quantity<D>> {
		return this.#outstanding;
	}

	get size(): number {
		return this.#grants.size;
	}

	/** Records a grant whose amount the authority has just reserved. */
	open(grant: Grant<D, S>): HeldGrant<D, S> {
		return this.#hold({ ...grant, outstanding: { ...grant.amount } });
	}

	get(grantId: string): HeldGrant<D, S> | undefined {
		return this.#grants.get(grantId);
	}

	/**
	 * Applies a holder's report: what it used for good, and what comes back to the authority, never
	 * more than the grant still holds (a report on a grant already reclaimed changes nothing). A
	 * report shows the holder alive: the grant is not reclaimed before `renewUntilMs`.
	 */
	report(
		report: GrantReport<D>,
		renewUntilMs = 0,
	): { used: Quantity<D>; back: Quantity<D> } | undefined {
		const grant = this.#grants.get(report.grantId);
		if (!grant) return undefined;
		if (!report.final && renewUntilMs > grant.reclaimAtMs) {
			grant.reclaimAtMs = renewUntilMs;
			this.#reclaims.push({ grant, atMs: renewUntilMs });
		}
		const usedNow = zeroOf(this.#dimensions);
		const back = zeroOf(this.#dimensions);
		for (const dimension of this.#dimensions) {
			const used = Math.min(grant.outstanding[dimension], Math.max(0, report.used[dimension] ?? 0));
			usedNow[dimension] = used;
			const left = grant.outstanding[dimension] - used;
			back[dimension] = Math.min(left, Math.max(0, report.returned[dimension] ?? 0));
			grant.outstanding[dimension] = left - back[dimension];
			this.#outstanding[dimension] -= used + back[dimension];
		}
		if (report.final) this.#close(grant);
		return { used: usedNow, back };
	}

	/** Removes and returns a grant whose holder has not given it back by its reclaim time. */
	popReclaimable(nowMs: number): HeldGrant<D, S> | undefined {
		const next = this.nextReclaimMs();
		if (next === undefined || next > nowMs) return undefined;
		const { grant } = this.#reclaims.pop() as { grant: HeldGrant<D, S> };
		this.#close(grant);
		return grant;
	}

	nextReclaimMs(): number | undefined {
		let entry = this.#reclaims.peek();
		while (entry && !this.#live(entry)) {
			this.#reclaims.pop();
			entry = this.#reclaims.peek();
		}
		return entry?.atMs;
	}

	values(): IterableIterator<HeldGrant<D, S>> {
		return this.#grants.values();
	}

	#hold(grant: HeldGrant<D, S>): HeldGrant<D, S> {
		this.#grants.set(grant.id, grant);
		this.#reclaims.push({ grant, atMs: grant.reclaimAtMs });
		if (this.#reclaims.size > 2 * this.#grants.size + HEAP_GARBAGE_ALLOWANCE) {
			this.#reclaims.retain((entry) => this.#live(entry));
		}
		addTo(this.#outstanding, grant.outstanding);
		return grant;
	}

	/** Whether a reclaim entry is the current one of a grant still held. */
	#live(entry: { grant: HeldGrant<D, S>; atMs: number }): boolean {
		return (
			this.#grants.get(entry.grant.id) === entry.grant && entry.grant.reclaimAtMs === entry.atMs
		);
	}

	#close(grant: HeldGrant<D, S>): void {
		if (this.#grants.get(grant.id) !== grant) return;
		this.#grants.delete(grant.id);
		for (const dimension of this.#dimensions) {
			this.#outstanding[dimension] -= grant.outstanding[dimension];
		}
	}
}

/**
 * A holder's recent use in each dimension, as a sliding window of `windowMs`: this window's count
 * plus the previous window's, weighted by how much of it still overlaps. A grant sized from it
 * follows the holder's traffic.
 */
export class RateMeter<D extends string> {
	readonly #windowMs: number;
	#startMs = 0;
	#current: Quantity<D>;
	#previous: Quantity<D>;

	constructor(dimensions: readonly D[], windowMs: number) {
		this.#windowMs = windowMs;
		this.#current = zeroOf(dimensions);
		this.#previous = zeroOf(dimensions);
	}

	add(amount: Partial<Quantity<D>>, nowMs: number): void {
		this.#roll(nowMs);
		addTo(this.#current, amount);
	}

	/** Use over the last `windowMs`: what to expect over the next. */
	recent(nowMs: number): Quantity<D> {
		this.#roll(nowMs);
		const overlap = 1 - (nowMs - this.#startMs) / this.#windowMs;
		const recent = { ...this.#current };
		for (const dimension of Object.keys(recent) as D[]) {
			recent[dimension] += this.#previous[dimension] * overlap;
		}
		return recent;
	}

	#roll(nowMs: number): void {
		if (nowMs < this.#startMs + this.#windowMs) return;
		const windows = Math.floor((nowMs - this.#startMs) / this.#windowMs);
		this.#previous = windows === 1 ? this.#current : zeroOf(Object.keys(this.#current) as D[]);
		this.#current = zeroOf(Object.keys(this.#current) as D[]);
		this.#startMs += windows * this.#windowMs;
	}
}
