// Demand on a pool's buckets: what a new ask would find ahead of it, in the pool's, its model's
// and its tenant's terms, summed from the queue and from the returns promised to callers.

export interface Demand {
	requests: number;
	tokens: number;
	modelRequests: number;
	modelTokens: number;
	tenantRequests: number;
	tenantTokens: number;
}

/** Nothing ahead: the start of a sum of demands. */
export function noDemand(): Demand {
	return {
		requests: 0,
		tokens: 0,
		modelRequests: 0,
		modelTokens: 0,
		tenantRequests: 0,
		tenantTokens: 0,
	};
}

export function addDemand(a: Demand, b: Demand): Demand {
	return {
		requests: a.requests + b.requests,
		tokens: a.tokens + b.tokens,
		modelRequests: a.modelRequests + b.modelRequests,
		modelTokens: a.modelTokens + b.modelTokens,
		tenantRequests: a.tenantRequests + b.tenantRequests,
		tenantTokens: a.tenantTokens + b.tenantTokens,
	};
}

export interface AheadQuery {
	/** The class the ask would wait in now (its own, or higher when it was submitted earlier). */
	rank: number;
	tenant: string;
	weight: number;
	model: string;
	tokens: number;
	retry: boolean;
	/** How long it would wait: the fronts of lower classes' lines that age past it meanwhile count. */
	withinMs: number;
}

/**
 * One visited waiter's fate in a walk: admitted, passed over, its tenant's tier set aside, or the
 * walk ends here.
 */
