// Background work (batch lines) takes only the capacity interactive work leaves: it is refused at
// once unless nobody waits and the pool keeps a headroom for interactive arrivals. The rule, in
// one place, for PoolState.submit.
import { type PoolStatus, type Rejection, rejection, seconds } from "./admission.ts";
import type { BreakerState } from "./circuit-breaker.ts";

/**
 * The share of each pool bucket (requests, tokens) that background work never takes. Bucket
 * levels, not rates: a background line goes only while the bucket holds more than this, so with
 * nothing else running it still gets the whole refill rate (the bucket hovers at the headroom),
 * while an interactive burst of up to this share finds room at once. A batch starts with at most
 * the rest (a tenth of a minute's limit), then goes at the refill rate: it never bursts a
 * minute's worth at a provider that counts in shorter windows, nor crowds the gateway's CPU.
 */
export const BACKGROUND_BUCKET_HEADROOM = 0.9;
/** The share of the concurrency slots background work never takes. */
export const BACKGROUND_SLOT_HEADROOM = 0.25;

/** When nobody can say how soon room comes back (waiters ahead, slots all taken). */
const RECHECK_MS = 1000;

/** Why a background ask may not go now, with when to ask again; undefined when it may. */
export function deferBackground(
	tokens: number,
	pool: PoolStatus & { provider: { state: BreakerState } },
	nowMs: number,
): Rejection | undefined {
	const refuse = (why: string, retryAfterMs: number) =>
		rejection(
			"no_spare_capacity",
			Math.max(1, Math.ceil(retryAfterMs)),
			`Background work waits for spare capacity: ${why}. Retry in about ${seconds(retryAfterMs)}.`,
		);
	if (pool.pausedUntilMs > nowMs) return refuse("the pool is paused", pool.pausedUntilMs - nowMs);
	if (pool.provider.state !== "closed") return refuse("the provider is failing", RECHECK_MS);
	if (pool.queued > 0) return refuse(`${pool.queued} interactive requests wait`, RECHECK_MS);
	if (pool.inFlight + 1 > pool.maxConcurrent * (1 - BACKGROUND_SLOT_HEADROOM)) {
		return refuse("the interactive share of concurrency slots is in use", RECHECK_MS);
	}
	// What the bucket must hold first; a line larger than the spare share waits for a full bucket.
	const needed = (amount: number, capacity: number) =>
		Math.min(capacity, amount + BACKGROUND_BUCKET_HEADROOM * capacity);
	const requestsShort = needed(1, pool.requests.capacity) - pool.requests.remaining;
	const tokensShort = needed(tokens, pool.tokens.capacity) - pool.tokens.remaining;
	const refillMs = Math.max(
		requestsShort > 0 ? (requestsShort * 60_000) / pool.requests.limitPerMinute : 0,
		tokensShort > 0 ? (tokensShort * 60_000) / pool.tokens.limitPerMinute : 0,
	);
	if (refillMs > 0) return refuse("the buckets are down to their interactive headroom", refillMs);
	return undefined;
}
