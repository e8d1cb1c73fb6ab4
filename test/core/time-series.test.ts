// Unit tests of the time-series ring buffer with a fake clock: counts land in their bucket, the
// window slides and forgets, late events are kept or dropped, and state survives JSON.
import { describe, expect, it } from "vitest";
import { TimeSeries } from "../../src/core/time-series.ts";

const T0 = 1_763_000_000_000; // epoch-sized and a whole second, as Date.now() gives

describe("time series", () => {
	it("counts events per bucket, oldest first, ending at the bucket of now", () => {
		const series = new TimeSeries({ bucketMs: 1_000, buckets: 4 });
		series.add("admitted", T0);
		series.add("admitted", T0 + 999, 2);
		series.add("admitted", T0 + 2_000);
		series.add("refused:deadline", T0 + 2_500);
		expect(series.snapshot(T0 + 2_900)).toEqual({
			bucketMs: 1_000,
			endMs: T0 + 3_000,
			series: { admitted: [0, 3, 0, 1], "refused:deadline": [0, 0, 0, 1] },
		});
	});

	it("slides with time: idle seconds show as zeros and old buckets leave the window", () => {
		const series = new TimeSeries({ bucketMs: 1_000, buckets: 3 });
		series.add("retry", T0, 5);
		expect(series.snapshot(T0 + 1_000).series.retry).toEqual([0, 5, 0]);
		expect(series.snapshot(T0 + 2_000).series.retry).toEqual([5, 0, 0]);
		expect(series.snapshot(T0 + 3_000).series.retry).toEqual([0, 0, 0]);
		// A slot reused by a later bucket starts from zero, not from what it held a lap ago.
		series.add("retry", T0 + 3_000);
		expect(series.snapshot(T0 + 3_000).series.retry).toEqual([0, 0, 1]);
		series.add("retry", T0 + 60_000, 2);
		expect(series.snapshot(T0 + 60_000).series.retry).toEqual([0, 0, 2]);
	});

	it("a snapshot reads without moving the window: a later add in between still counts", () => {
		const series = new TimeSeries({ bucketMs: 1_000, buckets: 3 });
		series.add("admitted", T0);
		series.snapshot(T0 + 10_000);
		series.add("admitted", T0 + 1_000);
		expect(series.snapshot(T0 + 1_000).series.admitted).toEqual([0, 1, 1]);
	});

	it("keeps a late event that is still inside the window and drops one that is not", () => {
		const series = new TimeSeries({ bucketMs: 1_000, buckets: 3 });
		series.add("admitted", T0 + 5_000);
		series.add("admitted", T0 + 4_200);
		series.add("admitted", T0 + 2_999);
		expect(series.snapshot(T0 + 5_000).series.admitted).toEqual([0, 1, 1]);
	});

	it("lists a kind first seen late with zeros before it, and every kind seen", () => {
		const series = new TimeSeries({ bucketMs: 500, buckets: 4 });
		series.add("admitted", T0);
		series.add("provider_429", T0 + 1_700);
		const snapshot = series.snapshot(T0 + 1_700);
		expect(snapshot.endMs).toBe(T0 + 2_000);
		expect(snapshot.series).toEqual({ admitted: [1, 0, 0, 0], provider_429: [0, 0, 0, 1] });
	});

	it("restores from its JSON state, dropping what aged out of the window meanwhile", () => {
		const series = new TimeSeries({ bucketMs: 1_000, buckets: 3 });
		series.add("admitted", T0, 4);
		series.add("admitted", T0 + 2_000, 7);
		const stored = JSON.parse(JSON.stringify(series.state()));
		const restored = new TimeSeries({ bucketMs: 1_000, buckets: 3 }, stored);
		expect(restored.snapshot(T0 + 2_000).series.admitted).toEqual([4, 0, 7]);
		restored.add("admitted", T0 + 3_000);
		expect(restored.snapshot(T0 + 3_000).series.admitted).toEqual([0, 7, 1]);
		// State kept in other units cannot be read as counts of this bucket width: it starts empty.
		const otherWidth = new TimeSeries({ bucketMs: 500, buckets: 3 }, stored);
		expect(otherWidth.snapshot(T0 + 2_000).series).toEqual({});
	});

	it("refuses a window it cannot hold", () => {
		expect(() => new TimeSeries({ bucketMs: 0, buckets: 3 })).toThrow(RangeError);
		expect(() => new TimeSeries({ bucketMs: 1_000, buckets: 0 })).toThrow(RangeError);
	});
});
