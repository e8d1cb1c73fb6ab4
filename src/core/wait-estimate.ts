// How long an ask would wait, and where it would stand, and the return booked for a caller turned
// away: what the queue ahead of it, and the higher classes still to arrive meanwhile, demand of
// the pool's, its model's and its tenant's buckets.
import { addDemand, type Demand, noDemand } from "./demand.ts";
import type { FairQueue } from "./fair-queue.ts";
import { type ArrivalRate, arrivalsOver } from "./headroom.ts";
import { ReturnSchedule } from "./return-schedule.ts";

export interface EstimatedAsk {
	tenant: string;
	model: string;
	tokens: number;
	retry?: boolean;
	/** Its class, for the headroom it must leave to the classes above. */
	rank?: number;
}

/** What the estimate needs of the scheduler: the queue, and the buckets' answers. */
export interface EstimateSources {
	queue: FairQueue;
	/** Milliseconds of the pool's refill that a demand uses up. */
	poolCostMs(requests: number, tokens: number): number;
	/** Milliseconds until the ask fits, if everything in `ahead` is admitted first. */
	waitMs(ahead: Demand, ask: EstimatedAsk, nowMs: number): number;
	/** The tenant's weight in fair shares. */
	weightOf(tenant: string): number;
	/** The recent arrivals per ms of the classes above `rank`. */
	arrivalsAbove(rank: number, nowMs: number): ArrivalRate;
}

/** Where an ask would stand in the queue and how long it would wait. */
export interface Forecast {
	/** 1-based place in the queue. */
	position: number;
	etaMs: number;
}

/** Rounds of the estimate with the arrivals to come; each cuts the error by their share of the pool. */
const ARRIVAL_ROUNDS = 40;
/** An estimate past this is as good as never: the arrivals above take the whole pool. */
const NEVER_MS = 24 * 3_600_000;

export class WaitEstimate {
	readonly #returns = new ReturnSchedule();
	readonly #poolCostMs: (requests: number, tokens: number) => number;
	readonly #sources: EstimateSources;

	constructor(sources: EstimateSources) {
		this.#sources = sources;
		this.#poolCostMs = (requests, tokens) => sources.poolCostMs(requests, tokens);
	}

	/**
	 * Estimated wait, and place, of an ask that would join the queue now in `tier`: what is ahead
	 * of it in higher tiers, its tenant's line and the others' fair share in its own, and the
	 * fronts of lower tiers' lines that will have aged past it by the time it would be admitted.
	 */
	of(ask: EstimatedAsk, tier: number, nowMs: number): Forecast {
		const { queue } = this.#sources;
		const estimated = { ...ask, rank: tier };
		const waitMs = (ahead: Demand) => this.#waitMs(ahead, estimated, nowMs);
		const query = {
			rank: tier,
			tenant: ask.tenant,
			weight: this.#sources.weightOf(ask.tenant),
			model: ask.model,
			tokens: ask.tokens,
			retry: ask.retry === true,
			withinMs: 0,
		};
		let ahead = queue.ahead(query, this.#poolCostMs);
		let etaMs = waitMs(ahead);
		// Waiting longer lets more of the lower classes age past it: a few rounds settle it.
		for (let round = 0; round < 3 && etaMs > query.withinMs; round++) {
			query.withinMs = etaMs;
			ahead = queue.ahead(query, this.#poolCostMs);
			etaMs = waitMs(ahead);
		}
		return { position: Math.round(ahead.requests) + 1, etaMs };
	}

	/**
	 * Books the caller's return for when everything waiting now (of any class: lower classes take
	 * every refill the higher leave before the caller is back) and every caller already told to
	 * come back will have been served; returns its retry-after.
	 */
	bookReturn(ask: EstimatedAsk, nowMs: number): number {
		const demand = addDemand(
			this.#sources.queue.all(ask.tenant, ask.model),
			this.#returns.promised(ask.tenant, ask.model, nowMs),
		);
		const returnMs = Math.max(
			nowMs + this.#sources.waitMs(demand, ask, nowMs),
			this.#returns.lastMs + this.#sources.poolCostMs(1, ask.tokens),
		);
		this.#returns.book(returnMs, ask.tenant, ask.model, ask.tokens);
		return Math.max(1, Math.ceil(returnMs - nowMs));
	}

	/**
	 * The wait until the ask fits with `ahead` admitted first and with the higher classes that
	 * arrive meanwhile at their recent rate (admitted ahead of it too): the fixed point of
	 * T = wait(ahead + arrivals over T), by repeated substitution.
	 */
	#waitMs(ahead: Demand, ask: EstimatedAsk, nowMs: number): number {
		const { waitMs } = this.#sources;
		let etaMs = waitMs(ahead, ask, nowMs);
		const rate = this.#sources.arrivalsAbove(ask.rank ?? 0, nowMs);
		if (rate.requests === 0) return etaMs;
		const arriving = noDemand();
		for (let round = 0; round < ARRIVAL_ROUNDS && etaMs < NEVER_MS; round++) {
			const arrivals = arrivalsOver(rate, etaMs);
			arriving.requests = arrivals.requests;
			arriving.tokens = arrivals.tokens;
			const next = waitMs(addDemand(ahead, arriving), ask, nowMs);
			if (Math.abs(next - etaMs) < 1) return next;
			etaMs = next;
		}
		return etaMs;
	}
}
