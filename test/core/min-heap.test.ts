// Unit tests of the min-heap behind deadlines and lease expiries.
import { expect, it } from "vitest";
import { MinHeap } from "../../src/core/min-heap.ts";

function lcg(seed: number): () => number {
	let state = seed;
	return () => {
		state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
		return state / 2_147_483_648;
	};
}

it("pops values in key order, duplicates included", () => {
	const random = lcg(42);
	const heap = new MinHeap<{ key: number }>((value) => value.key);
	const keys = Array.from({ length: 2_000 }, () => Math.floor(random() * 500));
	for (const key of keys) heap.push({ key });
	expect(heap.size).toBe(2_000);
	expect(heap.peek()?.key).toBe(Math.min(...keys));
	const popped: number[] = [];
	for (let value = heap.pop(); value; value = heap.pop()) popped.push(value.key);
	expect(popped).toEqual([...keys].sort((a, b) => a - b));
	expect(heap.pop()).toBeUndefined();
});

it("keeps heap order after retain drops values", () => {
	const random = lcg(7);
	const heap = new MinHeap<number>((value) => value);
	const values = Array.from({ length: 1_000 }, () => Math.floor(random() * 10_000));
	for (const value of values) heap.push(value);
	heap.retain((value) => value % 3 !== 0);
	const popped: number[] = [];
	for (let value = heap.pop(); value !== undefined; value = heap.pop()) popped.push(value);
	expect(popped).toEqual(values.filter((value) => value % 3 !== 0).sort((a, b) => a - b));
});
