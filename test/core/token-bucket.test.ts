// Unit tests of the continuous token bucket functions.
import { describe, expect, it } from "vitest";
import {
	bucketSpec,
	charge,
	clampToCapacity,
	fullBucket,
	hasRoom,
	levelAt,
	msUntilLevel,
	wholeUnitsAt,
} from "../../src/core/token-bucket.ts";

const spec = bucketSpec(600, 100); // 10 per second, 0.01 per ms

describe("token bucket", () => {
	it("starts full and refills continuously up to its capacity", () => {
		let state = charge(spec, fullBucket(spec), 100, 1_000);
		expect(levelAt(spec, state, 1_000)).toBe(0);
		expect(levelAt(spec, state, 1_250)).toBeCloseTo(2.5, 9);
		expect(levelAt(spec, state, 100_000)).toBe(100);
		state = charge(spec, state, 3, 1_500);
		expect(levelAt(spec, state, 1_500)).toBeCloseTo(2, 9);
	});

	it("goes into debt on an extra charge and is repaid by time", () => {
		const state = charge(spec, fullBucket(spec), 130, 0);
		expect(levelAt(spec, state, 0)).toBe(-30);
		expect(hasRoom(spec, state, 1, 3_000)).toBe(false);
		expect(msUntilLevel(spec, state, 1, 0)).toBeCloseTo(3_100, 3);
		expect(hasRoom(spec, state, 1, 3_100)).toBe(true);
		expect(wholeUnitsAt(spec, state, 0)).toBe(0);
	});

	it("refunds only up to the capacity", () => {
		const state = charge(spec, charge(spec, fullBucket(spec), 10, 0), -50, 0);
		expect(levelAt(spec, state, 0)).toBe(100);
	});

	it("refills nothing when the clock goes backwards", () => {
		const state = charge(spec, fullBucket(spec), 100, 10_000);
		expect(levelAt(spec, state, 5_000)).toBe(0);
		const later = charge(spec, state, 0, 5_000);
		expect(later.updatedMs).toBe(10_000);
		expect(levelAt(spec, later, 10_100)).toBeCloseTo(1, 9);
	});

	it("estimates delivery beyond the capacity for a queue that drains it", () => {
		const state = charge(spec, fullBucket(spec), 100, 0);
		expect(msUntilLevel(spec, state, 250, 0)).toBeCloseTo(25_000, 3);
		expect(msUntilLevel(bucketSpec(0, 100), state, 1, 0)).toBe(Number.POSITIVE_INFINITY);
	});

	it("counts whole units despite float rounding in the refill", () => {
		const fine = bucketSpec(60_000 * 0.1, 1); // 0.1 per ms: ten steps of 1 ms make one unit
		let state = charge(fine, fullBucket(fine), 1, 0);
		for (let nowMs = 1; nowMs <= 10; nowMs++) state = charge(fine, state, 0, nowMs);
		expect(wholeUnitsAt(fine, state, 10)).toBe(1);
		expect(hasRoom(fine, state, 1, 10)).toBe(true);
	});

	it("clamps a saved level to a capacity that shrank", () => {
		const saved = { level: 80, updatedMs: 7 };
		expect(clampToCapacity(bucketSpec(600, 50), saved)).toEqual({ level: 50, updatedMs: 7 });
		expect(clampToCapacity(bucketSpec(600, 500), saved)).toBe(saved);
	});
});
