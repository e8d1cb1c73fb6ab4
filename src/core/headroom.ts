// Headroom for higher classes: the part of the pool's buckets and slots a class may not take,
// because the classes above it are likely to need it soon; sized from their recent arrival rate.
import { CLASS_COUNT } from "./priority.ts";

export interface HeadroomOptions {
	/** Share of each capacity (requests, tokens, slots) always kept for the classes above; 0–0.5. */
	floor: number;
	/** The span of the higher classes' arrivals the headroom covers. */
	horizonMs: number;
}

/** What an admission of one class must leave in the pool's buckets and slots. */
export interface Reserve {
	requests: number;
	tokens: number;
	slots: number;
}

export interface Capacity {
	requests: number;
	tokens: number;
	slots: number;
}

/** Arrivals of a class per millisecond, in requests and in tokens. */
export interface ArrivalRate {
	requests: number;
	tokens: number;
}

export const NO_RESERVE: Reserve = { requests: 0, tokens: 0, slots: 0 };

/** The time constant of the decaying arrival rates: "recent" is about this long. */
const RATE_TIME_CONSTANT_MS = 5_000;
/** A class's rate is never taken from less than this much of its history (a burst is not a rate)... */
const RATE_MIN_HISTORY_MS = 1_000;
/** ...nor from fewer recent arrivals than this (about this many within the last τ). */
const RATE_MIN_ARRIVALS = 5;
/** The weight of each new lease's hold time in the running mean. */
const HOLD_TIME_WEIGHT = 0.05;
/** A class never gives up more than this share of a capacity to the classes above it. */
const MAX_SHARE = 0.5;
/** Standard deviations of the higher classes' arrivals (Poisson) covered beyond their mean. */
const SAFETY_SIGMAS = 2;

/**
 * Each class's recent arrival rate, an exponentially decaying average: every arrival adds
 * 1/τ, and the sum decays by e^(−Δt/τ). Constant memory; the mean of a steady stream is its rate.
 * In a class's first moments the sum has not built up yet: it is divided by the share it has,
 * 1 − e^(−t/τ) after t of history, so that a stream that just started counts at its full rate. A
 * class with only a handful of recent arrivals has no rate yet: a few requests are not a stream.
 */
export class ArrivalRates {
	readonly #requests = new Array<number>(CLASS_COUNT).fill(0);
	readonly #tokens = new Array<number>(CLASS_COUNT).fill(0);
	readonly #firstMs = new Array<number>(CLASS_COUNT).fill(Number.NaN);
	#updatedMs = 0;

	arrived(rank: number, tokens: number, nowMs: number): void {
		this.#decayTo(nowMs);
		if (Number.isNaN(this.#firstMs[rank])) this.#firstMs[rank] = nowMs;
		this.#requests[rank] = (this.#requests[rank] ?? 0) + 1 / RATE_TIME_CONSTANT_MS;
		this.#tokens[rank] = (this.#tokens[rank] ?? 0) + tokens / RATE_TIME_CONSTANT_MS;
	}

	/** The arrivals per ms of every class above `rank` together. */
	above(rank: number, nowMs: number): ArrivalRate {
		this.#decayTo(nowMs);
		let requests = 0;
		let tokens = 0;
		for (let above = 0; above < rank; above++) {
			if ((this.#requests[above] ?? 0) * RATE_TIME_CONSTANT_MS < RATE_MIN_ARRIVALS) continue;
			const built = this.#builtUp(above, nowMs);
			requests += (this.#requests[above] ?? 0) / built;
			tokens += (this.#tokens[above] ?? 0) / built;
		}
		return { requests, tokens };
	}

	/** The share of a steady rate the decaying sum holds after the class's history so far. */
	#builtUp(rank: number, nowMs: number): number {
		const historyMs = nowMs - (this.#firstMs[rank] ?? nowMs);
		if (!(historyMs >= 0)) return 1;
		return 1 - Math.exp(-Math.max(RATE_MIN_HISTORY_MS, historyMs) / RATE_TIME_CONSTANT_MS);
	}

	#decayTo(nowMs: number): void {
		if (nowMs <= this.#updatedMs) return;
		const factor = Math.exp((this.#updatedMs - nowMs) / RATE_TIME_CONSTANT_MS);
		for (let rank = 0; rank < CLASS_COUNT; rank++) {
			this.#requests[rank] = (this.#requests[rank] ?? 0) * factor;
			this.#tokens[rank] = (this.#tokens[rank] ?? 0) * factor;
		}
		this.#updatedMs = nowMs;
	}
}

/**
 * The headroom rule. A class may not take the last part of a capacity that the classes above it
 * would need over the next `horizonMs`: their expected arrivals n = rate × horizon, plus two
 * standard deviations (n + 2√n requests, and as many of their average tokens); for slots, their
 * arrivals over a lease's mean hold time, the same way. At least `floor` of each capacity, at most
 * half. Under overload the lower classes keep the buckets at that level instead of empty, so a
 * higher arrival finds room at once; nothing is thrown away, since a bucket below its capacity
 * loses no refill.
 */
export class Headroom {
	readonly arrivals = new ArrivalRates();
	readonly #options: HeadroomOptions;
	#meanHoldMs = 0;
	/** Reserves by rank, valid at #cachedMs until the next arrival. */
	readonly #cache: (Reserve | undefined)[] = new Array(CLASS_COUNT).fill(undefined);
	#cachedMs = Number.NaN;

	constructor(options: HeadroomOptions) {
		const { floor, horizonMs } = options;
		if (!(floor >= 0 && floor <= MAX_SHARE)) {
			throw new RangeError(`headroom floor ${floor} is not between 0 and ${MAX_SHARE}`);
		}
		if (!(Number.isFinite(horizonMs) && horizonMs >= 0)) {
			throw new RangeError(`headroom horizonMs ${horizonMs} is not a number of ms`);
		}
		this.#options = options;
	}

	/** Whether any class ever leaves anything to another (a floor, or a horizon). */
	get active(): boolean {
		return this.#options.floor > 0 || this.#options.horizonMs > 0;
	}

	arrived(rank: number, tokens: number, nowMs: number): void {
		this.arrivals.arrived(rank, tokens, nowMs);
		this.#cachedMs = Number.NaN;
	}

	/**
	 * The arrivals per ms of the classes above `rank` that a wait estimate counts on; none with a
	 * horizon of 0, which turns headroom off.
	 */
	arrivalsAbove(rank: number, nowMs: number): ArrivalRate {
		return this.#options.horizonMs > 0
			? this.arrivals.above(rank, nowMs)
			: { requests: 0, tokens: 0 };
	}

	/** A lease was held this long: the running mean sizes the slots' headroom. */
	held(ms: number): void {
		this.#meanHoldMs =
			this.#meanHoldMs === 0 ? ms : this.#meanHoldMs + HOLD_TIME_WEIGHT * (ms - this.#meanHoldMs);
		this.#cachedMs = Number.NaN;
	}

	/** What an admission of class `rank` must leave for the classes above it. */
	reserve(rank: number, capacity: Capacity, nowMs: number): Reserve {
		if (rank <= 0) return NO_RESERVE;
		if (nowMs !== this.#cachedMs) {
			this.#cache.fill(undefined);
			this.#cachedMs = nowMs;
		}
		const cached = this.#cache[rank];
		if (cached) return cached;
		const { floor, horizonMs } = this.#options;
		const rate = this.arrivalsAbove(rank, nowMs);
		const expected = withSafety(rate.requests * horizonMs);
		const tokensPerRequest = rate.requests > 0 ? rate.tokens / rate.requests : 0;
		const share = (amount: number, of: number) =>
			Math.min(MAX_SHARE * of, Math.max(floor * of, amount));
		const reserve = {
			requests: share(expected, capacity.requests),
			tokens: share(expected * tokensPerRequest, capacity.tokens),
			slots: share(withSafety(rate.requests * this.#meanHoldMs), capacity.slots),
		};
		this.#cache[rank] = reserve;
		return reserve;
	}
}

/**
 * The arrivals at `rate` to count on over `ms`: their mean plus SAFETY_SIGMAS standard deviations
 * (Poisson), so that an estimate counting them errs on the long side.
 */
export function arrivalsOver(rate: ArrivalRate, ms: number): ArrivalRate {
	const requests = withSafety(rate.requests * ms);
	return { requests, tokens: rate.requests > 0 ? (requests * rate.tokens) / rate.requests : 0 };
}

/** A Poisson count's mean plus SAFETY_SIGMAS standard deviations, in whole units (0 stays 0). */
function withSafety(mean: number): number {
	return mean <= 0 ? 0 : Math.ceil(mean + SAFETY_SIGMAS * Math.sqrt(mean));
}
