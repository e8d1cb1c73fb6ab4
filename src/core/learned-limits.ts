// A pool's running knowledge of the provider's limits: what it has admitted since each request,
// so that a provider's `remaining` can be read against it, and the limits learned so far.
import {
	type ConfiguredLimits,
	type LimitAdvice,
	learnLimits,
	type PerMinuteLimits,
	type ReportedLimits,
	startingLimits,
} from "./limit-learning.ts";

export interface LearnedLimitsSnapshot {
	learned: Partial<PerMinuteLimits>;
	source: string;
}

export class LearnedLimits {
	#learned: Partial<PerMinuteLimits>;
	#source: string;
	/** Running totals of what the pool admitted, and their values when each lease was admitted. */
	#admitted = { requests: 0, tokens: 0 };
	readonly #admittedAt = new Map<string, { requests: number; tokens: number }>();

	constructor(
		private readonly configured: ConfiguredLimits,
		snapshot?: LearnedLimitsSnapshot,
	) {
		this.#learned = snapshot?.learned ?? {};
		this.#source = snapshot?.source ?? startingLimits(configured).source;
	}

	/** What the pool learned to run with, beyond its configuration. */
	get learned(): Partial<PerMinuteLimits> {
		return this.#learned;
	}

	/** The per-minute limits in force and where they come from, for /admin. */
	current(): PerMinuteLimits & { source: string } {
		const start = startingLimits(this.configured);
		return {
			requestsPerMinute: this.#learned.requestsPerMinute ?? start.requestsPerMinute,
			tokensPerMinute: this.#learned.tokensPerMinute ?? start.tokensPerMinute,
			source: this.#source,
		};
	}

	admitted(ticketId: string, tokens: number): void {
		this.#admitted = {
			requests: this.#admitted.requests + 1,
			tokens: this.#admitted.tokens + tokens,
		};
		this.#admittedAt.set(ticketId, this.#admitted);
	}

	/** The lease ended without the provider's headers (a failure, a caller gone). */
	forget(ticketId: string): void {
		this.#admittedAt.delete(ticketId);
	}

	/**
	 * The provider answered `ticketId` with these headers. Undefined when there is nothing to
	 * read them against (the lease was admitted by an instance that since restarted).
	 * `adopt` in the advice is already applied here: rebuild the pool's limits from `current()`.
	 */
	observe(
		ticketId: string,
		reported: ReportedLimits,
		available: { requests: number; tokens: number },
	): LimitAdvice | undefined {
		const at = this.#admittedAt.get(ticketId);
		this.#admittedAt.delete(ticketId);
		if (!at) return undefined;
		const since = {
			requests: this.#admitted.requests - at.requests,
			tokens: this.#admitted.tokens - at.tokens,
		};
		const current = this.current();
		const advice = learnLimits(reported, since, {
			configured: this.configured,
			current,
			available,
		});
		this.#source = advice.source;
		if (advice.adopt) this.#learned = { ...this.#learned, ...advice.adopt };
		return advice;
	}

	snapshot(): LearnedLimitsSnapshot {
		return { learned: this.#learned, source: this.#source };
	}
}
