// A binary heap whose items remember their place in it, so that any item can be removed or re-keyed
// in O(log n): the wait queue's tenants and lines change keys as they are served, promoted, shed.

/** Where an item sits in one heap; -1 when it is not in that heap. */
export interface HeapPlace<T> {
	get(item: T): number;
	set(item: T, index: number): void;
}

export class IndexedHeap<T> {
	readonly #before: (a: T, b: T) => boolean;
	readonly #place: HeapPlace<T>;
	readonly #items: T[] = [];

	/** `before(a, b)`: a comes out first. */
	constructor(before: (a: T, b: T) => boolean, place: HeapPlace<T>) {
		this.#before = before;
		this.#place = place;
	}

	get size(): number {
		return this.#items.length;
	}

	peek(): T | undefined {
		return this.#items[0];
	}

	/** The item at a heap index (0 is the top); for bounded walks near the top. */
	at(index: number): T | undefined {
		return this.#items[index];
	}

	has(item: T): boolean {
		const index = this.#place.get(item);
		return index >= 0 && this.#items[index] === item;
	}

	push(item: T): void {
		this.#items.push(item);
		this.#siftUp(this.#items.length - 1, item);
	}

	pop(): T | undefined {
		const top = this.#items[0];
		if (top !== undefined) this.delete(top);
		return top;
	}

	/** Removes the item if it is here. */
	delete(item: T): void {
		if (!this.has(item)) return;
		const index = this.#place.get(item);
		this.#place.set(item, -1);
		const last = this.#items.pop() as T;
		if (index === this.#items.length) return;
		this.#items[index] = last;
		this.#place.set(last, index);
		this.update(last);
	}

	/** Restores the order after the item's key changed; pushes it if it is not here. */
	update(item: T): void {
		if (!this.has(item)) {
			this.push(item);
			return;
		}
		const index = this.#place.get(item);
		const parent = this.#items[(index - 1) >> 1];
		if (index > 0 && parent !== undefined && this.#before(item, parent)) {
			this.#siftUp(index, item);
		} else {
			this.#siftDown(index, item);
		}
	}

	#siftUp(index: number, item: T): void {
		const items = this.#items;
		while (index > 0) {
			const parentIndex = (index - 1) >> 1;
			const parent = items[parentIndex] as T;
			if (!this.#before(item, parent)) break;
			items[index] = parent;
			this.#place.set(parent, index);
			index = parentIndex;
		}
		items[index] = item;
		this.#place.set(item, index);
	}

	#siftDown(index: number, item: T): void {
		const items = this.#items;
		const length = items.length;
		for (;;) {
			let childIndex = 2 * index + 1;
			if (childIndex >= length) break;
			let child = items[childIndex] as T;
			const right = items[childIndex + 1];
			if (right !== undefined && this.#before(right, child)) {
				childIndex++;
				child = right;
			}
			if (!this.#before(child, item)) break;
			items[index] = child;
			this.#place.set(child, index);
			index = childIndex;
		}
		items[index] = item;
		this.#place.set(item, index);
	}
}
