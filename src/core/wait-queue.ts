// The waiting line of one pool: first in, first out, except that retries after a provider 429 go
// ahead of first attempts. A small unit on purpose: priority classes and tenant fairness replace it.
import { MinHeap } from "./min-heap.ts";

export interface Waiting {
	readonly ticketId: string;
	readonly model: string;
	readonly tokens: number;
	readonly deadlineMs: number;
	readonly retry?: boolean;
}

/** What waits ahead of a new ask: in all, and for the ask's own model. */
export interface Demand {
	requests: number;
	tokens: number;
	modelRequests: number;
	modelTokens: number;
}

interface Entry<T> {
	readonly item: T;
	readonly enqueuedMs: number;
}

interface Totals {
	requests: number;
	tokens: number;
}

/** Past this many dead heap entries the deadline index is rebuilt from the live ones. */
const HEAP_GARBAGE_ALLOWANCE = 1024;
/** A line drops the entries behind its head once they are this many and at least half of it. */
const COMPACT_AFTER = 1024;

/** One first-in-first-out line, with running totals so the demand ahead costs O(1). */
class Line<T extends Waiting> {
	readonly byId = new Map<string, Entry<T>>();
	readonly totals: Totals = { requests: 0, tokens: 0 };
	readonly byModel = new Map<string, Totals>();
	// Removed entries stay in the array until they reach the head, where `first` skips them.
	#order: Entry<T>[] = [];
	#head = 0;

	get size(): number {
		return this.byId.size;
	}

	add(entry: Entry<T>): void {
		const { ticketId, model, tokens } = entry.item;
		this.byId.set(ticketId, entry);
		if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#order.length) {
			this.#order = this.#order.slice(this.#head);
			this.#head = 0;
		}
		this.#order.push(entry);
		this.totals.requests++;
		this.totals.tokens += tokens;
		const modelTotals = this.byModel.get(model);
		if (modelTotals) {
			modelTotals.requests++;
			modelTotals.tokens += tokens;
		} else {
			this.byModel.set(model, { requests: 1, tokens });
		}
	}

	delete(ticketId: string): Entry<T> | undefined {
		const entry = this.byId.get(ticketId);
		if (!entry) return undefined;
		const { model, tokens } = entry.item;
		this.byId.delete(ticketId);
		subtract(this.totals, tokens);
		const modelTotals = this.byModel.get(model);
		if (modelTotals && subtract(modelTotals, tokens) === 0) this.byModel.delete(model);
		return entry;
	}

	first(): Entry<T> | undefined {
		const order = this.#order;
		while (this.#head < order.length) {
			const entry = order[this.#head] as Entry<T>;
			if (this.byId.get(entry.item.ticketId) === entry) return entry;
			this.#head++;
		}
		this.#order = [];
		this.#head = 0;
		return undefined;
	}
}

/** Takes one request and its tokens off running totals; returns the requests left. */
function subtract(totals: Totals, tokens: number): number {
	totals.requests--;
	// An empty line restarts from exact zero, so float sums cannot drift over a long life.
	totals.tokens = totals.requests === 0 ? 0 : totals.tokens - tokens;
	return totals.requests;
}

export class WaitQueue<T extends Waiting> {
	readonly #retries = new Line<T>();
	readonly #firstAttempts = new Line<T>();
	// Lazy deletion: entries that left the queue stay here until they surface or a rebuild.
	readonly #deadlines = new MinHeap<Entry<T>>((entry) => entry.item.deadlineMs);

	get size(): number {
		return this.#retries.size + this.#firstAttempts.size;
	}

	has(ticketId: string): boolean {
		return this.#retries.byId.has(ticketId) || this.#firstAttempts.byId.has(ticketId);
	}

	/** Adds an item at the back of its line; returns its 1-based place in the queue. */
	push(item: T, nowMs: number): number {
		const entry = { item, enqueuedMs: nowMs };
		const line = this.#lineOf(item);
		line.add(entry);
		this.#deadlines.push(entry);
		if (this.#deadlines.size > 2 * this.size + HEAP_GARBAGE_ALLOWANCE) {
			this.#deadlines.retain((queued) => this.#isQueued(queued));
		}
		return item.retry ? line.size : this.size;
	}

	/** The next item to admit. */
	peek(): T | undefined {
		return (this.#retries.first() ?? this.#firstAttempts.first())?.item;
	}

	shift(): T | undefined {
		const head = this.peek();
		if (head) this.#lineOf(head).delete(head.ticketId);
		return head;
	}

	remove(ticketId: string): T | undefined {
		return (this.#retries.delete(ticketId) ?? this.#firstAttempts.delete(ticketId))?.item;
	}

	/** How many waiters, and how much of them, would be ahead of a new ask. */
	demandAhead(retry: boolean, model: string): Demand {
		const lines = retry ? [this.#retries] : [this.#retries, this.#firstAttempts];
		const demand: Demand = { requests: 0, tokens: 0, modelRequests: 0, modelTokens: 0 };
		for (const line of lines) {
			demand.requests += line.totals.requests;
			demand.tokens += line.totals.tokens;
			const modelTotals = line.byModel.get(model);
			if (modelTotals) {
				demand.modelRequests += modelTotals.requests;
				demand.modelTokens += modelTotals.tokens;
			}
		}
		return demand;
	}

	oldestEnqueuedMs(): number | undefined {
		const retry = this.#retries.first();
		const first = this.#firstAttempts.first();
		if (!retry || !first) return (retry ?? first)?.enqueuedMs;
		return Math.min(retry.enqueuedMs, first.enqueuedMs);
	}

	earliestDeadlineMs(): number | undefined {
		return this.#liveDeadline()?.item.deadlineMs;
	}

	/** Removes and returns one waiter whose deadline is at or before nowMs, if any. */
	popOverdue(nowMs: number): T | undefined {
		const entry = this.#liveDeadline();
		if (!entry || entry.item.deadlineMs > nowMs) return undefined;
		this.#deadlines.pop();
		this.#lineOf(entry.item).delete(entry.item.ticketId);
		return entry.item;
	}

	#liveDeadline(): Entry<T> | undefined {
		let entry = this.#deadlines.peek();
		while (entry && !this.#isQueued(entry)) {
			this.#deadlines.pop();
			entry = this.#deadlines.peek();
		}
		return entry;
	}

	#isQueued(entry: Entry<T>): boolean {
		return this.#lineOf(entry.item).byId.get(entry.item.ticketId) === entry;
	}

	#lineOf(item: Waiting): Line<T> {
		return item.retry ? this.#retries : this.#firstAttempts;
	}
}
