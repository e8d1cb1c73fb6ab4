// Event counts per fixed time bucket over a sliding window (a ring buffer per kind of event), for
// the operator's charts: admissions, refusals by reason, provider 429s, retries per second.

export interface TimeSeriesOptions {
	/** Width of one bucket: 1000 gives counts per second. */
	bucketMs: number;
	/** Buckets kept: the window is bucketMs × buckets long. */
	buckets: number;
}

/** Counts per bucket, oldest first; the last bucket is the one holding `endMs - 1`. */
export interface TimeSeriesSnapshot {
	bucketMs: number;
	endMs: number;
	series: Record<string, number[]>;
}

/** JSON-serialisable state: each kind's counts, oldest first, ending at bucket `lastBucket`. */
export interface TimeSeriesState {
	bucketMs: number;
	lastBucket: number;
	counts: Record<string, number[]>;
}

/** Five minutes in one-second buckets. */
export const DEFAULT_TIME_SERIES: TimeSeriesOptions = { bucketMs: 1_000, buckets: 300 };

export class TimeSeries {
	readonly #bucketMs: number;
	readonly #buckets: number;
	/** Each kind's ring: the count of absolute bucket b lives at index b mod buckets. */
	readonly #rings = new Map<string, number[]>();
	/** The newest absolute bucket number (floor(ms / bucketMs)) any ring has been advanced to. */
	#lastBucket = Number.NEGATIVE_INFINITY;

	constructor(options: TimeSeriesOptions = DEFAULT_TIME_SERIES, state?: TimeSeriesState) {
		if (!(options.bucketMs > 0) || !Number.isInteger(options.buckets) || options.buckets < 1) {
			throw new RangeError("TimeSeries needs bucketMs > 0 and a whole number of buckets ≥ 1");
		}
		this.#bucketMs = options.bucketMs;
		this.#buckets = options.buckets;
		if (state && state.bucketMs === options.bucketMs) this.#restore(state);
	}

	/** Counts `count` events of `kind` at `nowMs`; events older than the window are dropped. */
	add(kind: string, nowMs: number, count = 1): void {
		const bucket = Math.floor(nowMs / this.#bucketMs);
		if (bucket > this.#lastBucket) this.#advanceTo(bucket);
		if (bucket <= this.#lastBucket - this.#buckets) return;
		let ring = this.#rings.get(kind);
		if (!ring) {
			ring = new Array<number>(this.#buckets).fill(0);
			this.#rings.set(kind, ring);
		}
		const index = this.#indexOf(bucket);
		ring[index] = (ring[index] ?? 0) + count;
	}

	/** The window ending with the bucket that holds `nowMs`: every kind seen, zeros where idle. */
	snapshot(nowMs: number): TimeSeriesSnapshot {
		const endBucket = Math.max(Math.floor(nowMs / this.#bucketMs), this.#lastBucket);
		const series: Record<string, number[]> = {};
		for (const kind of [...this.#rings.keys()].sort()) series[kind] = this.#window(kind, endBucket);
		return { bucketMs: this.#bucketMs, endMs: (endBucket + 1) * this.#bucketMs, series };
	}

	/** For storage: restoring it later keeps what is still inside the window then. */
	state(): TimeSeriesState {
		const lastBucket = Number.isFinite(this.#lastBucket) ? this.#lastBucket : 0;
		const counts: Record<string, number[]> = {};
		for (const kind of this.#rings.keys()) counts[kind] = this.#window(kind, lastBucket);
		return { bucketMs: this.#bucketMs, lastBucket, counts };
	}

	#window(kind: string, endBucket: number): number[] {
		const ring = this.#rings.get(kind);
		const counts = new Array<number>(this.#buckets).fill(0);
		if (!ring) return counts;
		for (let offset = 0; offset < this.#buckets; offset++) {
			const bucket = endBucket - this.#buckets + 1 + offset;
			// Buckets newer than the rings' head were never written: they are still zero.
			if (bucket > this.#lastBucket || bucket <= this.#lastBucket - this.#buckets) continue;
			counts[offset] = ring[this.#indexOf(bucket)] ?? 0;
		}
		return counts;
	}

	/** Moves the head to `bucket`, zeroing the slots of the buckets skipped over (at most all). */
	#advanceTo(bucket: number): void {
		const from = Number.isFinite(this.#lastBucket)
			? Math.max(this.#lastBucket + 1, bucket - this.#buckets + 1)
			: bucket;
		for (const ring of this.#rings.values()) {
			for (let b = from; b <= bucket; b++) ring[this.#indexOf(b)] = 0;
		}
		this.#lastBucket = bucket;
	}

	#indexOf(bucket: number): number {
		return ((bucket % this.#buckets) + this.#buckets) % this.#buckets;
	}

	#restore(state: TimeSeriesState): void {
		this.#lastBucket = state.lastBucket;
		for (const [kind, counts] of Object.entries(state.counts)) {
			const ring = new Array<number>(this.#buckets).fill(0);
			// Stored oldest first, ending at lastBucket; a stored window longer than ours keeps its end.
			const kept = counts.slice(-this.#buckets);
			kept.forEach((count, offset) => {
				ring[this.#indexOf(state.lastBucket - kept.length + 1 + offset)] = count;
			});
			this.#rings.set(kind, ring);
		}
	}
}
