// When callers turned away should come back: after the queue ahead of them and after every caller
// already told to come back before them, so that callers who honour retry-after find room instead
// of all returning at the same moment. Only retry-after uses it; admission never waits for it.
import { CLASS_COUNT } from "./fair-queue.ts";

export interface ReturnRequest {
	/** The caller's class (0 = critical): a return goes ahead of returns of lower classes. */
	rank: number;
	tenant: string;
	/** The estimated wait had it joined the queue now. */
	waitMs: number;
	/** Milliseconds of the pool's refill one such request uses up. */
	poolCostMs: number;
	/** The same for its tenant's own buckets; 0 when the tenant has none. */
	tenantCostMs: number;
}

export class ReturnSchedule {
	// By class: the time by which every promised return of that class or higher will be served.
	readonly #horizonsMs: number[] = new Array(CLASS_COUNT).fill(Number.NEGATIVE_INFINITY);
	readonly #tenantHorizonsMs = new Map<string, number>();

	/** Promises the caller room at the returned time, and books it. */
	book(request: ReturnRequest, nowMs: number): number {
		const { rank, tenant, poolCostMs, tenantCostMs } = request;
		const tenantHorizonMs = this.#tenantHorizonsMs.get(tenant) ?? Number.NEGATIVE_INFINITY;
		const returnMs = Math.max(
			nowMs + request.waitMs,
			(this.#horizonsMs[rank] as number) + poolCostMs,
			tenantCostMs > 0 ? tenantHorizonMs + tenantCostMs : Number.NEGATIVE_INFINITY,
		);
		// Promised returns of its class and below are served after it: this one pushes them back.
		for (let lower = rank; lower < CLASS_COUNT; lower++) {
			this.#horizonsMs[lower] = later(this.#horizonsMs[lower] as number, returnMs, poolCostMs);
		}
		if (tenantCostMs > 0) {
			this.#tenantHorizonsMs.set(tenant, later(tenantHorizonMs, returnMs, tenantCostMs));
		}
		return returnMs;
	}
}

function later(horizonMs: number, returnMs: number, costMs: number): number {
	return horizonMs >= returnMs ? horizonMs + costMs : returnMs;
}
