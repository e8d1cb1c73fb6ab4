// A sliding-window limit for one scope (a pool or one of its models): no window of `windowMs`
// ever admits more than the limit's requests or tokens. The same surface as RateBuckets, so the
// queue, priorities, reservations and reconciliation work the same over either.
import type { BucketView, RateBucketsState, RateBucketsView, Room } from "./rate-buckets.ts";
import { RateBuckets } from "./rate-buckets.ts";

/** How a scope's limits are enforced. */
export type LimitAlgorithm = "token-bucket" | "sliding-window";

export interface WindowLimits {
	requestsPerMinute?: number;
	tokensPerMinute?: number;
	algorithm?: LimitAlgorithm;
	/** The window's length; the limit per window is the per-minute limit × windowMs / 60 000. */
	windowMs?: number;
}

/** One slot's admissions: [slot start ms, requests, tokens]. */
export type WindowEntry = [number, number, number];

export type WindowState = NonNullable<RateBucketsState["window"]>;

/**
 * Slots per window. Admissions are counted per slot and a slot leaves the window only when its
 * last moment has, so the count never misses an admission (it over-counts by at most one slot):
 * memory is at most SLOTS + 1 entries however many requests, and at full load the limit is
 * reached one slot (1% of the window) late.
 */
const SLOTS = 100;
const SLACK = 1e-6;

/** The scope's limiter: a sliding window when its limits ask for one, else its token buckets. */
export function limiterFor(
	limits: ConstructorParameters<typeof RateBuckets>[0] & WindowLimits,
	saved?: RateBucketsState,
): RateBuckets | SlidingWindow {
	return limits.algorithm === "sliding-window"
		? new SlidingWindow(limits, saved?.window)
		: new RateBuckets(limits, saved);
}

export class SlidingWindow {
	readonly #windowMs: number;
	readonly #slotMs: number;
	readonly #requestsPerMinute: number | undefined;
	readonly #tokensPerMinute: number | undefined;
	readonly #maxRequests: number;
	readonly #maxTokens: number;
	/** Oldest first; each slot that admitted something has one. */
	#entries: WindowEntry[];
	#requests = 0;
	#tokens = 0;

	constructor(limits: WindowLimits, saved?: WindowState) {
		const windowMs = limits.windowMs ?? 60_000;
		if (!(Number.isFinite(windowMs) && windowMs > 0)) {
			throw new RangeError(`windowMs ${windowMs} is not a positive number of ms`);
		}
		this.#windowMs = windowMs;
		this.#slotMs = windowMs / SLOTS;
		this.#requestsPerMinute = limits.requestsPerMinute;
		this.#tokensPerMinute = limits.tokensPerMinute;
		const perWindow = (perMinute: number | undefined) =>
			perMinute === undefined ? Number.POSITIVE_INFINITY : (perMinute * windowMs) / 60_000;
		this.#maxRequests = perWindow(limits.requestsPerMinute);
		this.#maxTokens = perWindow(limits.tokensPerMinute);
		// Slots of a window of another length cannot be placed in this one's: keep each whole.
		this.#entries = saved ? saved.entries.map((entry) => [...entry] as WindowEntry) : [];
		for (const [, requests, tokens] of this.#entries) {
			this.#requests += requests;
			this.#tokens += tokens;
		}
	}

	get bounded(): boolean {
		return true;
	}

	get tokenCapacity(): number {
		return this.#maxTokens;
	}

	get requestCapacity(): number {
		return this.#maxRequests;
	}

	/** Room in the window for one request of `tokens`, leaving `reserve` untouched. */
	fits(tokens: number, nowMs: number, reserve: Room = { requests: 0, tokens: 0 }): boolean {
		this.#expire(nowMs);
		return (
			this.#requests + 1 + reserve.requests <= this.#maxRequests + SLACK &&
			this.#tokens + tokens + reserve.tokens <= this.#maxTokens + SLACK
		);
	}

	take(tokens: number, nowMs: number): void {
		this.#add(1, tokens, nowMs);
	}

	/**
	 * Reconciles an admission's tokens (a refund when negative) in the slot it was admitted in,
	 * where the provider counted it; nothing when that slot has left the window.
	 */
	chargeTokens(tokens: number, nowMs: number, admittedMs = nowMs): void {
		this.#expire(nowMs);
		const start = this.#slotStart(admittedMs);
		for (let i = this.#entries.length - 1; i >= 0; i--) {
			const entry = this.#entries[i] as WindowEntry;
			if (entry[0] < start) return;
			if (entry[0] === start) {
				const charged = Math.max(-entry[2], tokens);
				entry[2] += charged;
				this.#tokens += charged;
				return;
			}
		}
	}

	/** Counts the provider's reported use beyond ours, so the room left is no more than it says. */
	lowerTo(room: { requests?: number; tokens?: number }, nowMs: number): void {
		this.#expire(nowMs);
		const requests = room.requests === undefined ? 0 : this.#roomOf("requests") - room.requests;
		const tokens = room.tokens === undefined ? 0 : this.#roomOf("tokens") - room.tokens;
		if (requests > 0 || tokens > 0) this.#add(Math.max(0, requests), Math.max(0, tokens), nowMs);
	}

	/** Milliseconds of the window's pace (limit per window) that requests and tokens use up. */
	costMs(requests: number, tokens: number): number {
		return Math.max(
			(requests * this.#windowMs) / this.#maxRequests,
			(tokens * this.#windowMs) / this.#maxTokens,
		);
	}

	/**
	 * Milliseconds until the window has room for `requests` requests and `tokens` tokens. Beyond
	 * one window's limit it is when a consumer admitting as soon as there is room will have got
	 * that much: each full limit takes one more window.
	 */
	waitMs(requests: number, tokens: number, nowMs: number): number {
		this.#expire(nowMs);
		return Math.max(this.#waitFor(1, requests, nowMs), this.#waitFor(2, tokens, nowMs));
	}

	view(nowMs: number): RateBucketsView {
		this.#expire(nowMs);
		const last = this.#entries.at(-1);
		const resetMs = last ? Math.ceil(this.#expiryOf(last) - nowMs) : 0;
		const view: RateBucketsView = {};
		const of = (perMinute: number, capacity: number, used: number): BucketView => ({
			limitPerMinute: perMinute,
			capacity,
			remaining: Math.max(0, Math.floor(capacity - used + SLACK)),
			resetMs,
		});
		if (this.#requestsPerMinute !== undefined) {
			view.requests = of(this.#requestsPerMinute, this.#maxRequests, this.#requests);
		}
		if (this.#tokensPerMinute !== undefined) {
			view.tokens = of(this.#tokensPerMinute, this.#maxTokens, this.#tokens);
		}
		return view;
	}

	state(): RateBucketsState {
		return { window: { windowMs: this.#windowMs, entries: this.#entries.map((e) => [...e]) } };
	}

	stateAt(nowMs: number): RateBucketsState {
		this.#expire(nowMs);
		return this.state();
	}

	#roomOf(what: "requests" | "tokens"): number {
		return what === "requests"
			? this.#maxRequests - this.#requests
			: this.#maxTokens - this.#tokens;
	}

	#add(requests: number, tokens: number, nowMs: number): void {
		this.#expire(nowMs);
		const start = this.#slotStart(nowMs);
		const last = this.#entries.at(-1);
		if (last && last[0] >= start) {
			last[1] += requests;
			last[2] += tokens;
		} else {
			this.#entries.push([start, requests, tokens]);
		}
		this.#requests += requests;
		this.#tokens += tokens;
	}

	#slotStart(atMs: number): number {
		return Math.floor(atMs / this.#slotMs) * this.#slotMs;
	}

	/** A slot leaves the window once the window has passed its last moment. */
	#expiryOf(entry: WindowEntry): number {
		return entry[0] + this.#slotMs + this.#windowMs;
	}

	#expire(nowMs: number): void {
		let dropped = 0;
		for (const entry of this.#entries) {
			if (this.#expiryOf(entry) > nowMs) break;
			this.#requests -= entry[1];
			this.#tokens -= entry[2];
			dropped++;
		}
		if (dropped > 0) this.#entries.splice(0, dropped);
		if (this.#entries.length === 0) {
			this.#requests = 0;
			this.#tokens = 0;
		}
	}

	/** Milliseconds until `amount` more of column `column` (1 requests, 2 tokens) fit. */
	#waitFor(column: 1 | 2, amount: number, nowMs: number): number {
		const max = column === 1 ? this.#maxRequests : this.#maxTokens;
		if (max === Number.POSITIVE_INFINITY) return 0;
		// Whole limits beyond the first each take one more window.
		const extraWindows = Math.max(0, Math.ceil((amount - SLACK) / max) - 1);
		const rest = amount - extraWindows * max;
		let excess = (column === 1 ? this.#requests : this.#tokens) + rest - max;
		if (excess <= SLACK) return extraWindows * this.#windowMs;
		for (const entry of this.#entries) {
			excess -= entry[column];
			if (excess <= SLACK) {
				return Math.max(0, this.#expiryOf(entry) - nowMs) + extraWindows * this.#windowMs;
			}
		}
		return extraWindows * this.#windowMs;
	}
}
