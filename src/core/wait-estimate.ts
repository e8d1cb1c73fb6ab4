// How long an ask would wait, and where it would stand, and the return booked for a caller turned
// away: what the queue ahead of it demands of the pool's, its model's and its tenant's buckets.
import { addDemand, type Demand } from "./demand.ts";
import type { FairQueue } from "./fair-queue.ts";
import { ReturnSchedule } from "./return-schedule.ts";

export interface EstimatedAsk {
	tenant: string;
	model: string;
	tokens: number;
	retry?: boolean;
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
}

/** Where an ask would stand in the queue and how long it would wait. */
export interface Forecast {
	/** 1-based place in the queue. */
	position: number;
	etaMs: number;
}

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
		const { queue, waitMs } = this.#sources;
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
		let etaMs = waitMs(ahead, ask, nowMs);
		// Waiting longer lets more of the lower classes age past it: a few rounds settle it.
		for (let round = 0; round < 3 && etaMs > query.withinMs; round++) {
			query.withinMs = etaMs;
			ahead = queue.ahead(query, this.#poolCostMs);
			etaMs = waitMs(ahead, ask, nowMs);
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
}
