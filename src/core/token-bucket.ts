// A continuous token bucket as small pure functions: the level refills with elapsed time, computed
// when read. The level may go below zero (debt) when a reconcile charges more than was reserved.

export interface BucketSpec {
	readonly capacity: number;
	readonly refillPerMs: number;
}

export interface BucketState {
	readonly level: number;
	readonly updatedMs: number;
}

/** Float slack, so a level refilled to exactly `amount` is not missed by rounding in the time maths. */
const LEVEL_EPSILON = 1e-6;

export function bucketSpec(perMinute: number, capacity: number): BucketSpec {
	return { capacity, refillPerMs: perMinute / 60_000 };
}

/** A full bucket stays full whatever time passes, so its time stamp does not matter. */
export function fullBucket(spec: BucketSpec): BucketState {
	return { level: spec.capacity, updatedMs: 0 };
}

/** Restores a saved state under a spec that may have shrunk since. */
export function clampToCapacity(spec: BucketSpec, state: BucketState): BucketState {
	return state.level > spec.capacity ? { level: spec.capacity, updatedMs: state.updatedMs } : state;
}

/** The level at nowMs. A clock that went backwards refills nothing. */
export function levelAt(spec: BucketSpec, state: BucketState, nowMs: number): number {
	const elapsedMs = Math.max(0, nowMs - state.updatedMs);
	return Math.min(spec.capacity, state.level + elapsedMs * spec.refillPerMs);
}

export function hasRoom(
	spec: BucketSpec,
	state: BucketState,
	amount: number,
	nowMs: number,
): boolean {
	return levelAt(spec, state, nowMs) >= amount - LEVEL_EPSILON;
}

/** Takes `amount` out of the bucket; a negative amount refunds, up to the capacity. */
export function charge(
	spec: BucketSpec,
	state: BucketState,
	amount: number,
	nowMs: number,
): BucketState {
	return {
		level: Math.min(spec.capacity, levelAt(spec, state, nowMs) - amount),
		updatedMs: Math.max(state.updatedMs, nowMs),
	};
}

/**
 * Milliseconds until hasRoom(amount) holds. It aims half the slack below `amount`, so that rounding
 * in the time maths can never make a wake at this time miss. For an amount above the capacity it
 * is the time until that much has been delivered to a consumer that takes it out as it refills (a
 * queue's estimate). Infinity when the bucket never refills.
 */
export function msUntilLevel(
	spec: BucketSpec,
	state: BucketState,
	amount: number,
	nowMs: number,
): number {
	const deficit = amount - levelAt(spec, state, nowMs);
	return deficit <= LEVEL_EPSILON ? 0 : (deficit - LEVEL_EPSILON / 2) / spec.refillPerMs;
}

/** Whole units available now, never negative (what a rate-limit header reports). */
export function wholeUnitsAt(spec: BucketSpec, state: BucketState, nowMs: number): number {
	return Math.max(0, Math.floor(levelAt(spec, state, nowMs) + LEVEL_EPSILON));
}
