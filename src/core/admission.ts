// What admission answers: the ask, the decision on it (admitted with a lease, queued, or
// rejected with why and when to come back), the pool's state as reported, and the messages.
import type { Lease } from "./lease-table.ts";
import type { Priority } from "./priority.ts";
import type { BucketView } from "./rate-buckets.ts";
import type { TenantView } from "./tenant-limits.ts";
import type { Forecast } from "./wait-estimate.ts";

export interface Ask {
	/** Unique among the pool's waiters and leases; also the lease id. */
	ticketId: string;
	tenant: string;
	model: string;
	priority: Priority;
	/** Estimated tokens, reserved on admission. */
	tokens: number;
	/** Absolute; a waiter not admitted by then is rejected. */
	deadlineMs: number;
	/** A re-send after a provider 429: queued ahead of its tenant's first attempts of its class. */
	retry?: boolean;
	/** Which send of its request this is (1, the default, is the first). */
	attempt?: number;
	/** Background work (a batch line): never queued, only spare capacity (core/background.ts). */
	background?: boolean;
	/**
	 * When the request first asked, if earlier than now: a waiter re-submitted after a restart
	 * keeps its age (its aging, its place among its tenant's waiters, its class's longest wait).
	 */
	submittedMs?: number;
}

/**
 * retryAfterMs is when to come back to find room, if the traffic ahead behaves as estimated: after
 * the queue ahead and after the callers already told to come back earlier (at least 1). For
 * too_large it is 0, because no wait makes it fit. position (1-based) and etaMs are the place and
 * the estimated wait the ask had, or would have had, in the queue; too_large has neither.
 */
export interface Rejection {
	kind: "rejected";
	reason: "too_large" | "queue_full" | "deadline" | "shed" | "no_spare_capacity";
	retryAfterMs: number;
	position?: number;
	etaMs?: number;
	message: string;
}

/** For a queued ask, position is its estimated 1-based place in the queue and etaMs its wait. */
export type Decision =
	| { kind: "admitted"; lease: Lease }
	| { kind: "queued"; position: number; etaMs: number }
	| Rejection;

export interface Outcome {
	ticketId: string;
	result: { kind: "admitted"; lease: Lease } | Rejection;
}

export interface RateLimitView {
	requests: BucketView;
	tokens: BucketView;
}

export interface PoolStatus {
	requests: BucketView;
	tokens: BucketView;
	models: Record<string, RateLimitView>;
	inFlight: number;
	maxConcurrent: number;
	queued: number;
	/** Waiters by the class they asked for. */
	queuedByPriority: Record<Priority, number>;
	/** Tenants with a policy, waiters or leases: their queue, leases in flight and own buckets. */
	tenants: Record<string, TenantView>;
	/** The longest any current waiter has waited since it was first submitted. */
	oldestWaitMs: number;
	pausedUntilMs: number;
	/** Counts since this scheduler started. */
	sinceStart: {
		/** Waiters displaced by higher-priority arrivals when the queue was full. */
		shed: number;
		/** Waiters whose deadline passed while they waited. */
		expired: number;
		/** Asks told at once that they could not be admitted before their deadline. */
		deadlineRejected: number;
	};
}

export function rejection(
	reason: Rejection["reason"],
	retryAfterMs: number,
	message: string,
	estimate?: Forecast,
): Rejection {
	const result: Rejection = { kind: "rejected", reason, retryAfterMs, message };
	if (estimate) {
		result.position = estimate.position;
		result.etaMs = Math.ceil(estimate.etaMs);
	}
	return result;
}

/** A token count an ask or a usage report may carry: finite and not negative. */
export function isTokenCount(tokens: number): boolean {
	return Number.isFinite(tokens) && tokens >= 0;
}

export function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** A token count as a person reads it: whole, with thousands separators. */
export function count(tokens: number): string {
	return Math.round(tokens).toLocaleString("en-US");
}
