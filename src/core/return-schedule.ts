// The returns promised to callers turned away, in time order, so that each retry-after counts
// every caller told to come back before it: callers who honour it find room instead of arriving
// together. Only retry-after uses it; admission never waits for a caller who may not come back.
import type { Demand } from "./demand.ts";

interface Booking {
	readonly atMs: number;
	readonly tenant: string;
	readonly model: string;
	readonly tokens: number;
}

/** Requests and tokens promised and not yet due: in all, for a tenant, for a model. */
export type Promised = Demand;

interface Totals {
	requests: number;
	tokens: number;
}

export class ReturnSchedule {
	// Sorted by atMs: a new promise is never earlier than the last, so that none is made untrue.
	#promises: Booking[] = [];
	#first = 0;
	readonly #all: Totals = { requests: 0, tokens: 0 };
	readonly #byTenant = new Map<string, Totals>();
	readonly #byModel = new Map<string, Totals>();

	/** The time of the last promise; no later promise may be earlier. */
	get lastMs(): number {
		return this.#promises[this.#promises.length - 1]?.atMs ?? Number.NEGATIVE_INFINITY;
	}

	/** What is promised after nowMs: those callers will be back, and ahead, before a new one. */
	promised(tenant: string, model: string, nowMs: number): Promised {
		this.#expire(nowMs);
		const byTenant = this.#byTenant.get(tenant);
		const byModel = this.#byModel.get(model);
		return {
			requests: this.#all.requests,
			tokens: this.#all.tokens,
			tenantRequests: byTenant?.requests ?? 0,
			tenantTokens: byTenant?.tokens ?? 0,
			modelRequests: byModel?.requests ?? 0,
			modelTokens: byModel?.tokens ?? 0,
		};
	}

	/** Books a return at atMs, which must be at or after lastMs. */
	book(atMs: number, tenant: string, model: string, tokens: number): void {
		this.#promises.push({ atMs, tenant, model, tokens });
		addTo(this.#all, 1, tokens);
		addTo(totalsOf(this.#byTenant, tenant), 1, tokens);
		addTo(totalsOf(this.#byModel, model), 1, tokens);
	}

	/** Forgets the promises that have come due: their callers are back, or are not coming. */
	#expire(nowMs: number): void {
		const promises = this.#promises;
		for (let promise = promises[this.#first]; promise && promise.atMs <= nowMs; ) {
			addTo(this.#all, -1, promise.tokens);
			if (addTo(totalsOf(this.#byTenant, promise.tenant), -1, promise.tokens) === 0) {
				this.#byTenant.delete(promise.tenant);
			}
			if (addTo(totalsOf(this.#byModel, promise.model), -1, promise.tokens) === 0) {
				this.#byModel.delete(promise.model);
			}
			promise = promises[++this.#first];
		}
		if (this.#first > 1024 && this.#first * 2 > promises.length) {
			this.#promises = promises.slice(this.#first);
			this.#first = 0;
		}
	}
}

function totalsOf(map: Map<string, Totals>, key: string): Totals {
	let totals = map.get(key);
	if (!totals) {
		totals = { requests: 0, tokens: 0 };
		map.set(key, totals);
	}
	return totals;
}

/** Adds or takes away one request of `tokens`; returns the requests left. */
function addTo(totals: Totals, sign: 1 | -1, tokens: number): number {
	totals.requests += sign;
	// An empty total restarts from exact zero, so float sums cannot drift.
	totals.tokens = totals.requests === 0 ? 0 : totals.tokens + sign * tokens;
	return totals.requests;
}
