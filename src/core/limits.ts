// The limits one provider credential is held to: rates per minute, burst capacities, concurrency.
import type { LimitAlgorithm } from "./sliding-window.ts";

export interface RateLimits {
	requestsPerMinute: number;
	tokensPerMinute: number;
	/** Bucket capacities; a new bucket starts full. */
	burstRequests: number;
	burstTokens: number;
	/** Token buckets (the default), or a sliding window of `windowMs` (bursts do not apply). */
	algorithm?: LimitAlgorithm;
	windowMs?: number;
}

export interface PoolLimits extends RateLimits {
	maxConcurrent: number;
	/** Per-model limits, applied in addition to the pool's own. */
	models: Record<string, RateLimits>;
}
