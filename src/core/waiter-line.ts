// One line of waiters in submission order, oldest first: O(1) at both ends, with lazy removal from
// the middle. Arrivals join at the back; a re-submission with an older submittedMs is slotted in.

/** What a line needs of a waiter: its order, and whether it still waits here. */
export interface InLine {
	readonly submittedMs: number;
	readonly seq: number;
	/** Cleared when the waiter leaves; the line drops it when it reaches an end. */
	waiting: boolean;
}

/** A line rebuilds without its departed entries once they are this many and outnumber the rest. */
const COMPACT_AFTER = 1024;

export class WaiterLine<T extends InLine> {
	#entries: T[] = [];
	#start = 0;
	#size = 0;

	get size(): number {
		return this.#size;
	}

	/** Adds a waiter in submission order (ties by seq); O(1) unless it is older than the back. */
	add(waiter: T): void {
		this.#size++;
		const entries = this.#entries;
		const back = this.back();
		if (!back || !comesBefore(waiter, back)) {
			entries.push(waiter);
			return;
		}
		let low = this.#start;
		let high = entries.length;
		while (low < high) {
			const middle = (low + high) >> 1;
			if (comesBefore(entries[middle] as T, waiter)) low = middle + 1;
			else high = middle;
		}
		entries.splice(low, 0, waiter);
	}

	/** Counts a waiter as gone; the caller has cleared its `waiting` flag. */
	left(): void {
		this.#size--;
		const dead = this.#entries.length - this.#start - this.#size;
		if (dead >= COMPACT_AFTER && dead > this.#size) {
			this.#entries = this.#entries.filter((entry, index) => index >= this.#start && entry.waiting);
			this.#start = 0;
		}
	}

	front(): T | undefined {
		const entries = this.#entries;
		while (this.#start < entries.length) {
			const entry = entries[this.#start] as T;
			if (entry.waiting) return entry;
			this.#start++;
		}
		this.#entries = [];
		this.#start = 0;
		return undefined;
	}

	back(): T | undefined {
		const entries = this.#entries;
		while (entries.length > this.#start) {
			const entry = entries[entries.length - 1] as T;
			if (entry.waiting) return entry;
			entries.pop();
		}
		return undefined;
	}

	*[Symbol.iterator](): Generator<T> {
		for (let index = this.#start; index < this.#entries.length; index++) {
			const entry = this.#entries[index] as T;
			if (entry.waiting) yield entry;
		}
	}
}

function comesBefore(a: InLine, b: InLine): boolean {
	return a.submittedMs < b.submittedMs || (a.submittedMs === b.submittedMs && a.seq < b.seq);
}
