// The mock's own limits: continuous token buckets for requests and tokens per minute, so it
// answers 429 the way a provider does, with the honest time until a request would fit.

const MS_PER_MINUTE = 60_000;
// Float refill can land a hair below a whole unit at exactly the moment a retry-after promised.
const EPSILON = 1e-9;

export type LimitName = "requests" | "tokens";

export interface BucketState {
	limit: number;
	/** Whole units left now. */
	remaining: number;
	/** Time until the bucket is full again. */
	resetMs: number;
}

export interface LimitsState {
	requests: BucketState;
	tokens: BucketState;
}

export type LimitDecision =
	| { kind: "admitted"; limits: LimitsState }
	| {
			kind: "limited";
			reason: LimitName;
			/** Time until this request would fit; null when it is larger than the limit itself. */
			retryAfterMs: number | null;
			requested: number;
			limits: LimitsState;
	  };

/** What the limiter enforces: per-minute rates, with buckets that hold burstSeconds of each. */
export interface MockLimits {
	requestsPerMinute: number;
	tokensPerMinute: number;
	burstSeconds: number;
}

class TokenBucket {
	#perMinute: number;
	#capacity: number;
	#level: number;
	#updatedAtMs: number;

	constructor(perMinute: number, burstSeconds: number, nowMs: number) {
		this.#perMinute = perMinute;
		this.#capacity = (perMinute * burstSeconds) / 60;
		this.#level = this.#capacity;
		this.#updatedAtMs = nowMs;
	}

	/** What was used still counts against a new capacity, so raising a limit gives room at once. */
	resize(perMinute: number, burstSeconds: number, nowMs: number): void {
		this.#refill(nowMs);
		const used = this.#capacity - this.#level;
		this.#perMinute = perMinute;
		this.#capacity = (perMinute * burstSeconds) / 60;
		this.#level = Math.max(0, this.#capacity - used);
	}

	/** 0 when `cost` fits now, Infinity when it never can. */
	waitMs(cost: number, nowMs: number): number {
		this.#refill(nowMs);
		if (cost > this.#capacity) return Number.POSITIVE_INFINITY;
		const missing = cost - this.#level;
		return missing <= EPSILON ? 0 : missing / this.#refillPerMs();
	}

	take(cost: number, nowMs: number): void {
		this.#refill(nowMs);
		this.#level = Math.max(0, this.#level - cost);
	}

	state(nowMs: number): BucketState {
		this.#refill(nowMs);
		return {
			limit: this.#perMinute,
			remaining: Math.floor(this.#level + EPSILON),
			resetMs: Math.ceil((this.#capacity - this.#level) / this.#refillPerMs()),
		};
	}

	#refillPerMs(): number {
		return this.#perMinute / MS_PER_MINUTE;
	}

	#refill(nowMs: number): void {
		const elapsedMs = Math.max(0, nowMs - this.#updatedAtMs);
		this.#level = Math.min(this.#capacity, this.#level + elapsedMs * this.#refillPerMs());
		this.#updatedAtMs = Math.max(nowMs, this.#updatedAtMs);
	}
}

export class MockLimiter {
	#requests: TokenBucket;
	#tokens: TokenBucket;

	constructor(limits: MockLimits, nowMs: number) {
		this.#requests = new TokenBucket(limits.requestsPerMinute, limits.burstSeconds, nowMs);
		this.#tokens = new TokenBucket(limits.tokensPerMinute, limits.burstSeconds, nowMs);
	}

	resize(limits: MockLimits, nowMs: number): void {
		this.#requests.resize(limits.requestsPerMinute, limits.burstSeconds, nowMs);
		this.#tokens.resize(limits.tokensPerMinute, limits.burstSeconds, nowMs);
	}

	/** Charges one request and `tokens` when both fit; a refused request is charged nothing. */
	tryCharge(tokens: number, nowMs: number): LimitDecision {
		const requestsWaitMs = this.#requests.waitMs(1, nowMs);
		const tokensWaitMs = this.#tokens.waitMs(tokens, nowMs);
		if (requestsWaitMs > 0 || tokensWaitMs > 0) {
			const reason = tokensWaitMs > requestsWaitMs ? "tokens" : "requests";
			const waitMs = Math.max(requestsWaitMs, tokensWaitMs);
			return {
				kind: "limited",
				reason,
				retryAfterMs: Number.isFinite(waitMs) ? Math.ceil(waitMs) : null,
				requested: reason === "tokens" ? tokens : 1,
				limits: this.state(nowMs),
			};
		}
		this.#requests.take(1, nowMs);
		this.#tokens.take(tokens, nowMs);
		return { kind: "admitted", limits: this.state(nowMs) };
	}

	state(nowMs: number): LimitsState {
		return { requests: this.#requests.state(nowMs), tokens: this.#tokens.state(nowMs) };
	}
}
