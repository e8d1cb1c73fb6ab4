// The leases in flight of one pool: each admitted attempt holds one until it is released or, if
// its holder vanished, until it expires and is reclaimed.
import { MinHeap } from "./min-heap.ts";

export interface Lease {
	ticketId: string;
	tenant: string;
	model: string;
	/** Tokens reserved at admission, reconciled at release. */
	tokens: number;
	/** Which send of its request this lease is for (1 = the first). */
	attempt: number;
	admittedMs: number;
	expiresMs: number;
}

/** Past this many released leases still in the expiry index, it is rebuilt from the live ones. */
const HEAP_GARBAGE_ALLOWANCE = 1024;

export class LeaseTable {
	readonly #leases = new Map<string, Lease>();
	// Lazy deletion: a released lease stays here until it surfaces or the index is rebuilt.
	readonly #expiries = new MinHeap<Lease>((lease) => lease.expiresMs);

	get size(): number {
		return this.#leases.size;
	}

	has(ticketId: string): boolean {
		return this.#leases.has(ticketId);
	}

	get(ticketId: string): Lease | undefined {
		return this.#leases.get(ticketId);
	}

	values(): IterableIterator<Lease> {
		return this.#leases.values();
	}

	add(lease: Lease): void {
		this.#leases.set(lease.ticketId, lease);
		this.#expiries.push(lease);
		if (this.#expiries.size > 2 * this.#leases.size + HEAP_GARBAGE_ALLOWANCE) {
			this.#expiries.retain((held) => this.#leases.get(held.ticketId) === held);
		}
	}

	/** Moves a held lease's expiry to `expiresMs`; false when it is unknown or was reclaimed. */
	renew(ticketId: string, expiresMs: number): boolean {
		const lease = this.#leases.get(ticketId);
		if (!lease) return false;
		// A new object: the index's entry for the old one becomes garbage (lazy deletion).
		this.add({ ...lease, expiresMs: Math.max(lease.expiresMs, expiresMs) });
		return true;
	}

	/** Ends a lease; undefined when it is unknown or was reclaimed. */
	remove(ticketId: string): Lease | undefined {
		const lease = this.#leases.get(ticketId);
		if (lease) this.#leases.delete(ticketId);
		return lease;
	}

	earliestExpiryMs(): number | undefined {
		let lease = this.#expiries.peek();
		while (lease && this.#leases.get(lease.ticketId) !== lease) {
			this.#expiries.pop();
			lease = this.#expiries.peek();
		}
		return lease?.expiresMs;
	}

	/** Removes and returns a lease past its expiry at nowMs, if any. */
	popExpired(nowMs: number): Lease | undefined {
		const expiresMs = this.earliestExpiryMs();
		if (expiresMs === undefined || expiresMs > nowMs) return undefined;
		const lease = this.#expiries.pop() as Lease;
		this.#leases.delete(lease.ticketId);
		return lease;
	}
}
