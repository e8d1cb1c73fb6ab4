// Which provider failures deserve another attempt, and how long to wait before it: exponential
// backoff with full jitter, capped, and never shorter than the provider's own Retry-After.

/**
 * Sends of one request, the first included: the official OpenAI and Anthropic SDKs' default of
 * two retries (`maxRetries: 2`), so a request sent through tollbooth is tried as often as without it.
 */
export const DEFAULT_MAX_ATTEMPTS = 3;

export interface BackoffOptions {
	/** The ceiling of the first retry's delay; it doubles with every further retry... */
	baseMs: number;
	/** ...up to this. */
	capMs: number;
}

/** The official SDKs' schedule: 0.5 s, 1 s, 2 s, 4 s, then 8 s for every later retry. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 8_000 };

/** One failed attempt as the gateway saw it. */
export interface Failure {
	/** The provider's HTTP status, when it answered at all. */
	status?: number;
	/** No status: the connection failed, or no first byte came before the first-byte timeout. */
	kind?: "connection" | "timeout";
	/** The provider's `x-should-retry: true|false`, which overrides the status as in the SDKs. */
	shouldRetry?: boolean;
}

/**
 * A retryable failure says how it is retried: `backoff` is this request's own retry after
 * backoffDelayMs; `pause` (a 429) is the pool-wide pause until the provider's retry-after, one
 * coordinated wait for every request of the key instead of one backoff each.
 */
export type FailureClass =
	| {
			retryable: true;
			via: "backoff" | "pause";
			reason:
				| "server_error"
				| "overloaded"
				| "request_timeout"
				| "conflict"
				| "rate_limited"
				| "connection_error"
				| "first_byte_timeout"
				| "provider_says_retry";
	  }
	| {
			retryable: false;
			reason:
				| "not_a_failure"
				| "client_error"
				| "server_error_final"
				| "unknown_failure"
				| "provider_says_no_retry";
	  };

const BACKOFF_STATUSES: Record<number, FailureClass> = {
	408: { retryable: true, via: "backoff", reason: "request_timeout" },
	409: { retryable: true, via: "backoff", reason: "conflict" },
	429: { retryable: true, via: "pause", reason: "rate_limited" },
	500: { retryable: true, via: "backoff", reason: "server_error" },
	502: { retryable: true, via: "backoff", reason: "server_error" },
	503: { retryable: true, via: "backoff", reason: "server_error" },
	504: { retryable: true, via: "backoff", reason: "server_error" },
	529: { retryable: true, via: "backoff", reason: "overloaded" },
};

/**
 * Whether a failed attempt is worth another one. Retryable: 408, 409, 429 (via the pool's pause),
 * 500, 502, 503, 504, 529 (Anthropic's overloaded), connection errors and first-byte timeouts.
 * Never: any other 4xx (the same request fails the same way) nor any other 5xx (501, 505...: not
 * transient). `x-should-retry` overrides the status either way, as in the official SDKs, but an
 * answer below 400 is no failure whatever it says. A status that is not an HTTP status, with no
 * `kind`, is an unknown failure and not retried.
 */
export function classifyFailure(failure: Failure): FailureClass {
	const verdict = classifyByStatus(failure);
	if (verdict.reason === "not_a_failure") return verdict;
	if (failure.shouldRetry === false) return { retryable: false, reason: "provider_says_no_retry" };
	if (failure.shouldRetry === true && !verdict.retryable) {
		return { retryable: true, via: "backoff", reason: "provider_says_retry" };
	}
	return verdict;
}

function classifyByStatus({ status, kind }: Failure): FailureClass {
	if (kind === "connection") return { retryable: true, via: "backoff", reason: "connection_error" };
	if (kind === "timeout") return { retryable: true, via: "backoff", reason: "first_byte_timeout" };
	if (status === undefined || !Number.isInteger(status) || status < 100 || status > 599) {
		return { retryable: false, reason: "unknown_failure" };
	}
	if (status < 400) return { retryable: false, reason: "not_a_failure" };
	return (
		BACKOFF_STATUSES[status] ??
		(status < 500
			? { retryable: false, reason: "client_error" }
			: { retryable: false, reason: "server_error_final" })
	);
}

/**
 * The highest delay retry `attempt` may draw: min(capMs, baseMs × 2^(attempt − 1)). `attempt` counts
 * retries from 1: the first retry (the request's second send) has a ceiling of baseMs, the second
 * 2 × baseMs, and so on.
 */
export function backoffCeilingMs(attempt: number, options: BackoffOptions): number {
	checkAttempt(attempt);
	const { baseMs, capMs } = options;
	if (!(baseMs >= 0 && capMs >= 0 && Number.isFinite(baseMs) && Number.isFinite(capMs))) {
		throw new RangeError(`backoff needs finite baseMs and capMs ≥ 0; got ${baseMs} and ${capMs}`);
	}
	// 2^1023 is the largest finite power of two: beyond it the product would be NaN for baseMs 0.
	return Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 1023));
}

/**
 * The delay before retry `attempt` (≥ 1, see backoffCeilingMs): uniform in [0, ceiling) ("full
 * jitter", so callers that failed together do not come back together), but at least the provider's
 * retryAfterMs when it sent one: a Retry-After is never undercut, even beyond capMs. A retryAfterMs
 * that is negative or not finite is ignored. `random` returns [0, 1) like Math.random.
 */
export function backoffDelayMs(
	attempt: number,
	options: BackoffOptions & { retryAfterMs?: number },
	random: () => number,
): number {
	const draw = random();
	const unit = Number.isNaN(draw) ? 0 : Math.min(Math.max(draw, 0), 1); // never NaN nor above
	const jitteredMs = backoffCeilingMs(attempt, options) * unit;
	const { retryAfterMs } = options;
	const honoured = retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0;
	return honoured ? Math.max(retryAfterMs, jitteredMs) : jitteredMs;
}

function checkAttempt(attempt: number): void {
	if (!Number.isInteger(attempt) || attempt < 1) {
		throw new RangeError(`retry attempts count from 1; got ${attempt}`);
	}
}
