// What a pool learns from the provider's rate-limit headers: lower its buckets when the provider
// reports less room than the pool believes, and adopt the provider's advertised per-minute limits.

/** A per-minute limit as the operator configured it: a number, or "auto" (learn the provider's). */
export type ConfiguredLimit = number | "auto";

export interface ConfiguredLimits {
	requestsPerMinute: ConfiguredLimit;
	tokensPerMinute: ConfiguredLimit;
}

export interface PerMinuteLimits {
	requestsPerMinute: number;
	tokensPerMinute: number;
}

/**
 * What an "auto" limit runs with until the provider's first answer advertises its own: 50 requests
 * a minute is the lowest paid tier either provider publishes (Anthropic's tier 1), and 10,000 tokens
 * a minute is below every paid tier of both. One answer replaces them.
 */
export const AUTO_START_LIMITS: PerMinuteLimits = {
	requestsPerMinute: 50,
	tokensPerMinute: 10_000,
};

/** One window as the provider reported it; resetMs is the time until it is full again. */
export interface ReportedWindow {
	limit?: number;
	remaining?: number;
	resetMs?: number;
}

/**
 * The provider's rate-limit headers, structurally the providers layer's RateLimitInfo. OpenAI
 * reports requests and tokens; Anthropic also reports its input- and output-token windows, with
 * `tokens` their sum.
 */
export interface ReportedLimits {
	requests?: ReportedWindow;
	tokens?: ReportedWindow;
	inputTokens?: ReportedWindow;
	outputTokens?: ReportedWindow;
}

/** What the pool believes when the answer arrives. */
export interface PoolBelief {
	configured: ConfiguredLimits;
	/** The per-minute limits the pool runs with now: configured, learned, or AUTO_START_LIMITS. */
	current: PerMinuteLimits;
	/** What the pool's buckets hold now (their level, which may be fractional or in debt). */
	available: { requests: number; tokens: number };
}

/**
 * What the pool admitted after the answered request (that request excluded): the provider had
 * not counted it when it took its `remaining` snapshot, but the pool's buckets already have.
 */
export interface AdmittedSince {
	requests: number;
	tokens: number;
}

/**
 * lowerTo: set the bucket level to this (an absolute level, never a delta: two answers that report
 * the same shortfall lower once). adopt: run with these per-minute limits from now on. source says
 * what the advice rests on, for /admin; it is there even when nothing is to be done.
 */
export interface LimitAdvice {
	lowerTo?: { requests?: number; tokens?: number };
	adopt?: { requestsPerMinute?: number; tokensPerMinute?: number };
	source: string;
}

/** The limits a pool starts with, and where they come from. */
export function startingLimits(configured: ConfiguredLimits): PerMinuteLimits & { source: string } {
	const requestsPerMinute =
		configured.requestsPerMinute === "auto"
			? AUTO_START_LIMITS.requestsPerMinute
			: configured.requestsPerMinute;
	const tokensPerMinute =
		configured.tokensPerMinute === "auto"
			? AUTO_START_LIMITS.tokensPerMinute
			: configured.tokensPerMinute;
	const auto = [
		configured.requestsPerMinute === "auto" ? `${requestsPerMinute} requests` : undefined,
		configured.tokensPerMinute === "auto" ? `${tokensPerMinute} tokens` : undefined,
	].filter((part) => part !== undefined);
	const source =
		auto.length === 0
			? "configured"
			: `auto: a conservative ${auto.join(" and ")} a minute until the provider's first answer`;
	return { requestsPerMinute, tokensPerMinute, source };
}

/**
 * Reads one provider answer's rate-limit headers against what the pool believes.
 *
 * Lowering: the provider's `remaining` is a snapshot taken when it answered; the requests and
 * tokens the pool admitted since then (`admittedSince`) are not in it but are in the pool's
 * buckets. So the room left now is about remaining − admittedSince (never below 0), and the pool
 * lowers a bucket to that when it holds more. The provider's refill since its answer is ignored:
 * the pool's own bucket refills from the lowered level at the pool's rate.
 *
 * Adopting: an "auto" limit follows the provider's advertised `limit` whenever it changes; a
 * configured number is lowered to a smaller advertised limit (the account was downgraded, or the
 * key is shared under a smaller tier) and goes back up to the configured number when the
 * advertised one rises again. Limits are taken as per minute, as both providers document them.
 * OpenAI reports the limits of the model that answered: give this the limits of that model.
 *
 * Anthropic's tokens: the pool keeps one bucket for input + output, so its limit is their sum (as
 * Anthropic's own `tokens` window reports it). Its room is the smallest of: the `tokens` window's
 * remaining, and for the input and output windows the share left of each applied to that sum. An
 * exhausted input window thus empties the bucket even when the combined window still shows the
 * output tokens left, as in a real 429 (input remaining 0, tokens remaining 80,000).
 *
 * Garbage is ignored: a value that is not a non-negative safe integer, a limit of 0 (it would stall
 * the pool for ever), and a window whose remaining exceeds its limit.
 */
export function learnLimits(
	reported: ReportedLimits,
	admittedSince: AdmittedSince,
	pool: PoolBelief,
): LimitAdvice {
	const requests = readRequests(reported);
	const tokens = readTokens(reported);
	const advice: LimitAdvice = { source: describe(requests, tokens) };

	const lowerRequests = lowered(
		requests.remaining,
		admittedSince.requests,
		pool.available.requests,
	);
	const lowerTokens = lowered(tokens.remaining, admittedSince.tokens, pool.available.tokens);
	if (lowerRequests !== undefined || lowerTokens !== undefined) {
		advice.lowerTo = {};
		if (lowerRequests !== undefined) advice.lowerTo.requests = lowerRequests;
		if (lowerTokens !== undefined) advice.lowerTo.tokens = lowerTokens;
	}

	const adoptRequests = adopted(
		requests.limit,
		pool.configured.requestsPerMinute,
		pool.current.requestsPerMinute,
	);
	const adoptTokens = adopted(
		tokens.limit,
		pool.configured.tokensPerMinute,
		pool.current.tokensPerMinute,
	);
	if (adoptRequests !== undefined || adoptTokens !== undefined) {
		advice.adopt = {};
		if (adoptRequests !== undefined) advice.adopt.requestsPerMinute = adoptRequests;
		if (adoptTokens !== undefined) advice.adopt.tokensPerMinute = adoptTokens;
	}
	return advice;
}

/** A window reduced to what the pool uses, with the text that says where it came from. */
interface Reading {
	limit?: number;
	remaining?: number;
	from: string[];
}

function readRequests(reported: ReportedLimits): Reading {
	const window = sane(reported.requests);
	const reading: Reading = { from: [] };
	if (window?.limit !== undefined) reading.limit = window.limit;
	if (window?.remaining !== undefined) reading.remaining = window.remaining;
	if (window) reading.from.push(`requests ${figures(window)}`);
	return reading;
}

function readTokens(reported: ReportedLimits): Reading {
	const combined = sane(reported.tokens);
	const input = sane(reported.inputTokens);
	const output = sane(reported.outputTokens);
	const reading: Reading = { from: [] };
	const summed =
		input?.limit !== undefined && output?.limit !== undefined
			? input.limit + output.limit
			: undefined;
	const limit = combined?.limit ?? summed;
	if (limit !== undefined) reading.limit = limit;

	const rooms: number[] = [];
	if (combined?.remaining !== undefined) rooms.push(combined.remaining);
	for (const part of [input, output]) {
		if (part?.remaining === undefined) continue;
		// Without the limits to scale by, the part's own remaining is the safe bound.
		rooms.push(
			part.limit !== undefined && limit !== undefined
				? Math.floor((part.remaining / part.limit) * limit)
				: part.remaining,
		);
	}
	if (rooms.length > 0) reading.remaining = Math.min(...rooms);

	if (combined) reading.from.push(`tokens ${figures(combined)}`);
	if (input) reading.from.push(`input tokens ${figures(input)}`);
	if (output) reading.from.push(`output tokens ${figures(output)}`);
	if (reading.remaining !== undefined && reading.remaining !== combined?.remaining) {
		reading.from.push(`so ${reading.remaining} tokens of room`);
	}
	return reading;
}

/** The window's usable values: a count is a non-negative safe integer; a limit also above 0. */
function sane(window: ReportedWindow | undefined): ReportedWindow | undefined {
	if (window === undefined || window === null || typeof window !== "object") return undefined;
	const count = (value: unknown) =>
		typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
	const limit = count(window.limit);
	const remaining = count(window.remaining);
	const usable: ReportedWindow = {};
	if (limit !== undefined && limit > 0) usable.limit = limit;
	if (remaining !== undefined) usable.remaining = remaining;
	if (
		usable.limit !== undefined &&
		usable.remaining !== undefined &&
		usable.remaining > usable.limit
	) {
		return undefined;
	}
	return usable.limit === undefined && usable.remaining === undefined ? undefined : usable;
}

function figures(window: ReportedWindow): string {
	if (window.limit === undefined) return `remaining ${window.remaining}`;
	if (window.remaining === undefined) return `limit ${window.limit}`;
	return `${window.remaining}/${window.limit} left`;
}

function describe(requests: Reading, tokens: Reading): string {
	const from = [...requests.from, ...tokens.from];
	return from.length === 0 ? "no usable rate-limit headers" : `provider: ${from.join(", ")}`;
}

function lowered(
	remaining: number | undefined,
	admittedSince: number,
	available: number,
): number | undefined {
	if (remaining === undefined) return undefined;
	const since = Number.isFinite(admittedSince) && admittedSince > 0 ? admittedSince : 0;
	const room = Math.max(0, remaining - since);
	return room < available ? room : undefined;
}

function adopted(
	advertised: number | undefined,
	configured: ConfiguredLimit,
	current: number,
): number | undefined {
	if (advertised === undefined) return undefined;
	const target = configured === "auto" ? advertised : Math.min(configured, advertised);
	return target !== current ? target : undefined;
}

// A pool's running knowledge of the provider's limits: what it has admitted since each request,
// so that a provider's `remaining` can be read against it, and the limits learned so far.
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

	readonly #configured: ConfiguredLimits;

	constructor(configured: ConfiguredLimits, snapshot?: LearnedLimitsSnapshot) {
		this.#configured = configured;
		this.#learned = snapshot?.learned ?? {};
		this.#source = snapshot?.source ?? startingLimits(configured).source;
	}

	/** What the pool learned to run with, beyond its configuration. */
	get learned(): Partial<PerMinuteLimits> {
		return this.#learned;
	}

	/** The per-minute limits in force and where they come from, for /admin. */
	current(): PerMinuteLimits & { source: string } {
		const start = startingLimits(this.#configured);
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
			configured: this.#configured,
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
