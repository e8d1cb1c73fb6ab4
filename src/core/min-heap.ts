// A binary min-heap ordered by a numeric key (deadlines, lease expiries): O(log n) push and pop.
export class MinHeap<T> {
	readonly #keyOf: (value: T) => number;
	#values: T[] = [];

	constructor(keyOf: (value: T) => number) {
		this.#keyOf = keyOf;
	}

	get size(): number {
		return this.#values.length;
	}

	peek(): T | undefined {
		return this.#values[0];
	}

	push(value: T): void {
		this.#values.push(value);
		this.#siftUp(this.#values.length - 1);
	}

	pop(): T | undefined {
		const values = this.#values;
		const top = values[0];
		const last = values.pop();
		if (values.length > 0 && last !== undefined) {
			values[0] = last;
			this.#siftDown(0);
		}
		return top;
	}

	/** Keeps only the values `keep` accepts, in O(n): how users of lazy deletion drop their garbage. */
	retain(keep: (value: T) => boolean): void {
		this.#values = this.#values.filter(keep);
		for (let index = (this.#values.length >> 1) - 1; index >= 0; index--) this.#siftDown(index);
	}

	#siftUp(index: number): void {
		const values = this.#values;
		const value = values[index] as T;
		const key = this.#keyOf(value);
		while (index > 0) {
			const parentIndex = (index - 1) >> 1;
			const parent = values[parentIndex] as T;
			if (this.#keyOf(parent) <= key) break;
			values[index] = parent;
			index = parentIndex;
		}
		values[index] = value;
	}

	#siftDown(index: number): void {
		const values = this.#values;
		const length = values.length;
		const value = values[index] as T;
		const key = this.#keyOf(value);
		for (;;) {
			let childIndex = 2 * index + 1;
			if (childIndex >= length) break;
			let child = values[childIndex] as T;
			const rightIndex = childIndex + 1;
			if (rightIndex < length) {
				const right = values[rightIndex] as T;
				if (this.#keyOf(right) < this.#keyOf(child)) {
					childIndex = rightIndex;
					child = right;
				}
			}
			if (this.#keyOf(child) >= key) break;
			values[index] = child;
			index = childIndex;
		}
		values[index] = value;
	}
}
