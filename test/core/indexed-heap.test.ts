// Unit tests of the indexed heap: order under pushes, pops, removals and re-keying.
import { describe, expect, it } from "vitest";
import { IndexedHeap } from "../../src/core/indexed-heap.ts";
import { seededRandom as random } from "../support/seeded-random.ts";

interface Item {
	key: number;
	index: number;
}

function heap(): IndexedHeap<Item> {
	return new IndexedHeap<Item>((a, b) => a.key < b.key, {
		get: (item) => item.index,
		set: (item, index) => {
			item.index = index;
		},
	});
}

describe("indexed heap", () => {
	it("agrees with a sorted list through random pushes, pops, deletes and updates", () => {
		const next = random(3);
		const subject = heap();
		const live = new Set<Item>();
		for (let step = 0; step < 20_000; step++) {
			const roll = next();
			const items = [...live];
			const any = items[Math.floor(next() * items.length)];
			if (roll < 0.4 || !any) {
				const item = { key: Math.floor(next() * 1_000), index: -1 };
				subject.push(item);
				live.add(item);
			} else if (roll < 0.6) {
				const top = subject.pop();
				expect(top?.key).toBe(Math.min(...items.map((item) => item.key)));
				if (top) live.delete(top);
			} else if (roll < 0.8) {
				subject.delete(any);
				subject.delete(any); // a second time does nothing
				live.delete(any);
				expect(subject.has(any)).toBe(false);
			} else {
				any.key = Math.floor(next() * 1_000);
				subject.update(any);
			}
			expect(subject.size).toBe(live.size);
		}
		const drained: number[] = [];
		for (let item = subject.pop(); item; item = subject.pop()) drained.push(item.key);
		expect(drained).toEqual([...live].map((item) => item.key).sort((a, b) => a - b));
	});

	it("pushes an item that update() finds missing", () => {
		const subject = heap();
		const item = { key: 5, index: -1 };
		subject.update(item);
		expect(subject.peek()).toBe(item);
		expect(subject.at(0)).toBe(item);
	});
});
