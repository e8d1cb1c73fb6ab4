// A simulation of one provider key's limit split over N Pool shards: each shard admits from a
// token bucket of its share of the limit, and every rebalance period the shares move towards where
// the demand is (an idle shard's unused share is taken by the busy ones). Pure: time is passed in.
import {
	type BucketSpec,
	type BucketState,
	bucketSpec,
	charge,
	fullBucket,
	hasRoom,
	levelAt,
} from "../../src/core/token-bucket.ts";
import { seededRandom } from "../lib/random.ts";

export interface ShardedPoolOptions {
	/** The provider's limit for the key, in requests per second. */
	limitPerSecond: number;
	shards: number;
	/** Each bucket holds this many seconds of its share (tollbooth's default is 10). */
	burstSeconds: number;
	/** How often shares are recomputed from demand; 0 keeps the equal split for ever. */
	rebalanceEveryMs: number;
	/** No shard's share falls below this fraction of the limit, so a quiet shard can still admit. */
	minShareFraction: number;
}

interface Shard {
	share: number;
	spec: BucketSpec;
	bucket: BucketState;
	/** Requests that arrived since the last rebalance, admitted or not: the shard's demand. */
	arrived: number;
}

export class ShardedPool {
	readonly #options: ShardedPoolOptions;
	readonly #shards: Shard[];
	#lastRebalanceMs: number;

	constructor(options: ShardedPoolOptions, nowMs: number) {
		this.#options = options;
		const share = options.limitPerSecond / options.shards;
		this.#shards = Array.from({ length: options.shards }, () => {
			const spec = specFor(share, options.burstSeconds);
			return { share, spec, bucket: fullBucket(spec), arrived: 0 };
		});
		this.#lastRebalanceMs = nowMs;
	}

	/** One request arrives at `shard` (the Worker picked it, e.g. by a hash of the caller). */
	tryAdmit(shard: number, nowMs: number): boolean {
		const state = this.#shards[shard];
		if (!state) throw new RangeError(`no shard ${shard}`);
		state.arrived += 1;
		if (!hasRoom(state.spec, state.bucket, 1, nowMs)) return false;
		state.bucket = charge(state.spec, state.bucket, 1, nowMs);
		return true;
	}

	/** Rebalances when a period has passed since the last time; call it as time goes on. */
	advance(nowMs: number): void {
		const { rebalanceEveryMs } = this.#options;
		if (rebalanceEveryMs > 0 && nowMs - this.#lastRebalanceMs >= rebalanceEveryMs) {
			this.#rebalance(nowMs);
		}
	}

	/** Each shard's share of the limit, per second; they always add up to the limit. */
	shares(): number[] {
		return this.#shards.map((shard) => shard.share);
	}

	/**
	 * New shares in proportion to each shard's demand over the last period, above a floor. When the
	 * total demand is under the limit, each shard gets its demand and the rest is split equally.
	 * A bucket keeps its level, clamped to its new capacity: tokens never move between shards, so
	 * the buckets together never hold more than the whole limit's burst.
	 */
	#rebalance(nowMs: number): void {
		const { limitPerSecond, minShareFraction } = this.#options;
		const periodSeconds = (nowMs - this.#lastRebalanceMs) / 1000;
		const demands = this.#shards.map((shard) => shard.arrived / periodSeconds);
		const floor = limitPerSecond * minShareFraction;
		const spare = limitPerSecond - floor * this.#shards.length;
		const wanted = demands.map((demand) => Math.max(0, demand - floor));
		const totalWanted = wanted.reduce((sum, value) => sum + value, 0);
		const shares =
			totalWanted > spare
				? wanted.map((value) => floor + (spare * value) / totalWanted)
				: wanted.map((value) => floor + value + (spare - totalWanted) / this.#shards.length);
		this.#shards.forEach((shard, index) => {
			const level = levelAt(shard.spec, shard.bucket, nowMs);
			shard.share = shares[index] as number;
			shard.spec = specFor(shard.share, this.#options.burstSeconds);
			shard.bucket = { level: Math.min(level, shard.spec.capacity), updatedMs: nowMs };
			shard.arrived = 0;
		});
		this.#lastRebalanceMs = nowMs;
	}
}

function specFor(perSecond: number, burstSeconds: number): BucketSpec {
	return bucketSpec(perSecond * 60, perSecond * burstSeconds);
}

export interface SimulationOptions {
	pool: ShardedPoolOptions;
	/** Requests per second offered to the key as a whole. */
	offeredPerSecond: number;
	durationMs: number;
	/** Share of the offered load that reaches each shard at a time (adds up to 1); with fewer
	 * shards than entries, entry i goes to shard i mod shards. */
	skewAt(nowMs: number): readonly number[];
	/** Admitted rate is judged from here on, past the first full buckets. */
	measureFromMs: number;
	seed: number;
}

export interface SimulationResult {
	offered: number;
	admitted: number;
	/** Admitted per second over the measured window, and as a share of the limit. */
	admittedPerSecond: number;
	ofLimit: number;
	/** What a provider with the same limit and burst would have refused of what was admitted. */
	providerRefused: number;
	/** Admitted in each second of the run. */
	admittedPerSecondTimeline: number[];
	/** Each shard's share of the limit at the end of each second. */
	sharesTimeline: number[][];
}

/** Arrivals as a Poisson process (seeded), one millisecond at a time. */
export function simulate(options: SimulationOptions): SimulationResult {
	const { pool: poolOptions } = options;
	const pool = new ShardedPool(poolOptions, 0);
	const provider = specFor(poolOptions.limitPerSecond, poolOptions.burstSeconds);
	let providerBucket = fullBucket(provider);
	const random = seededRandom(options.seed);
	const perMs = options.offeredPerSecond / 1000;
	const result: SimulationResult = {
		offered: 0,
		admitted: 0,
		admittedPerSecond: 0,
		ofLimit: 0,
		providerRefused: 0,
		admittedPerSecondTimeline: [],
		sharesTimeline: [],
	};
	let measured = 0;
	let nextArrivalMs = exponential(random) / perMs;
	for (let nowMs = 0; nowMs < options.durationMs; nowMs++) {
		pool.advance(nowMs);
		const second = Math.floor(nowMs / 1000);
		result.admittedPerSecondTimeline[second] ??= 0;
		const skew = options.skewAt(nowMs);
		for (; nextArrivalMs < nowMs + 1; nextArrivalMs += exponential(random) / perMs) {
			result.offered += 1;
			const shard = pickShard(skew, random()) % poolOptions.shards;
			if (!pool.tryAdmit(shard, nowMs)) continue;
			result.admitted += 1;
			result.admittedPerSecondTimeline[second] += 1;
			if (nowMs >= options.measureFromMs) measured += 1;
			if (hasRoom(provider, providerBucket, 1, nowMs)) {
				providerBucket = charge(provider, providerBucket, 1, nowMs);
			} else {
				result.providerRefused += 1;
			}
		}
		if (nowMs % 1000 === 999) result.sharesTimeline.push(pool.shares());
	}
	result.admittedPerSecond = (measured * 1000) / (options.durationMs - options.measureFromMs);
	result.ofLimit = result.admittedPerSecond / poolOptions.limitPerSecond;
	return result;
}

function pickShard(skew: readonly number[], draw: number): number {
	let cumulative = 0;
	for (let index = 0; index < skew.length; index++) {
		cumulative += skew[index] as number;
		if (draw < cumulative) return index;
	}
	return skew.length - 1;
}

function exponential(random: () => number): number {
	return -Math.log(1 - random());
}
