// The circuit breaker of one pool: after sustained provider failures it answers at once instead of
// sending more, and lets exactly one probe through at a time to learn when the provider is back.

/**
 * closed: every attempt goes. open: none goes, until openUntilMs. half-open: the open period is
 * over and one probe may go; its success closes the breaker, its failure opens it again for longer.
 */
export type BreakerState = "closed" | "open" | "half-open";

export interface CircuitBreakerOptions {
	/** The breaker judges the last `windowOutcomes` outcomes... */
	windowOutcomes: number;
	/** ...of which none is older than this. */
	windowMs: number;
	/** It opens when the window holds at least this many failures... */
	minFailures: number;
	/** ...and they are at least this share of the window's outcomes. */
	failureRatio: number;
	/** The first open period; each failed probe in a row doubles it... */
	openBaseMs: number;
	/** ...up to this: a provider that came back waits at most this long (plus one probe) for traffic. */
	openMaxMs: number;
	/** A probe that never reported back (its Worker died) stops blocking another after this long. */
	probeTimeoutMs: number;
}

/**
 * The last 20 outcomes within 10 s: at 100 requests a second a total outage opens the breaker after
 * ten failures (0.1 s); at low traffic it takes five failures within 10 s that are at least half
 * of that time's outcomes, so occasional errors never open it (backoff and the retry budget deal
 * with those). Open periods of
 * 100, 200, 400, then 500 ms: probing twice a second costs a failing provider nothing, and a
 * recovered one gets its traffic back within about half a second.
 */
export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerOptions = {
	windowOutcomes: 20,
	windowMs: 10_000,
	minFailures: 5,
	failureRatio: 0.5,
	openBaseMs: 100,
	openMaxMs: 500,
	probeTimeoutMs: 10_000,
};

/**
 * allowed with probe: true is the half-open breaker's one probe: report its outcome. Refused:
 * retryAfterMs is the time until the breaker lets a probe go (circuit_open), or until the probe
 * in flight has most likely answered (probe_in_flight).
 */
export type BreakerDecision =
	| { allowed: true; probe: boolean }
	| { allowed: false; retryAfterMs: number; reason: "circuit_open" | "probe_in_flight" };

/** For /admin. `failures` and `outcomes` count the current window. */
export interface BreakerStatus {
	state: BreakerState;
	/** 0 when closed; otherwise as BreakerDecision's retryAfterMs. */
	retryAfterMs: number;
	failures: number;
	outcomes: number;
	/** Failed probes in a row: the open period is openBaseMs × 2^failedProbes, capped. */
	failedProbes: number;
}

/** JSON-serialisable state, for the Pool object's storage. */
export interface CircuitBreakerSnapshot {
	/** "open" also covers half-open: that is open with openUntilMs past. */
	phase: "closed" | "open";
	openUntilMs: number;
	failedProbes: number;
	probeStartedMs: number | null;
	outcomes: Outcome[];
}

interface Outcome {
	atMs: number;
	failed: boolean;
}

/**
 * Record as a failure what says the provider is in trouble: classifyFailure's `via: "backoff"`
 * (5xx, 529, 408, 409, connection errors, first-byte timeouts), once the status is known. A 429 is
 * neither (the pool's pause handles it); any other answer, 4xx included, is a success: the
 * provider is up. Outcomes of attempts admitted before the breaker opened are counted but change
 * nothing while it is open; in half-open any outcome decides, the probe's or a late one's.
 */
export class CircuitBreaker {
	readonly #options: CircuitBreakerOptions;
	#phase: "closed" | "open" = "closed";
	#openUntilMs = 0;
	#failedProbes = 0;
	#probeStartedMs: number | null = null;
	#outcomes: Outcome[] = [];

	constructor(
		options: CircuitBreakerOptions = DEFAULT_CIRCUIT_BREAKER,
		snapshot?: CircuitBreakerSnapshot,
	) {
		this.#options = options;
		if (snapshot) this.#restore(snapshot);
	}

	state(nowMs: number): BreakerState {
		if (this.#phase === "closed") return "closed";
		return nowMs < this.#openUntilMs ? "open" : "half-open";
	}

	/** Whether an attempt may go upstream now. */
	allow(nowMs: number): BreakerDecision {
		const state = this.state(nowMs);
		if (state === "closed") return { allowed: true, probe: false };
		if (state === "open") {
			return { allowed: false, retryAfterMs: this.#openUntilMs - nowMs, reason: "circuit_open" };
		}
		const probeTimesOutMs = this.#probeTimesOutMs();
		if (nowMs < probeTimesOutMs) {
			return {
				allowed: false,
				retryAfterMs: Math.min(this.#openPeriodMs(), probeTimesOutMs - nowMs),
				reason: "probe_in_flight",
			};
		}
		this.#probeStartedMs = nowMs;
		return { allowed: true, probe: true };
	}

	recordSuccess(nowMs: number): void {
		this.#record(nowMs, false);
		if (this.state(nowMs) === "half-open") this.#close();
	}

	recordFailure(nowMs: number): void {
		this.#record(nowMs, true);
		const state = this.state(nowMs);
		if (state === "half-open") {
			this.#failedProbes += 1;
			this.#open(nowMs);
		} else if (state === "closed" && this.#tripped()) {
			this.#failedProbes = 0;
			this.#open(nowMs);
		}
	}

	status(nowMs: number): BreakerStatus {
		this.#expire(nowMs);
		const decision = this.state(nowMs) === "closed" ? undefined : this.#peek(nowMs);
		return {
			state: this.state(nowMs),
			retryAfterMs: decision ?? 0,
			failures: this.#failures(),
			outcomes: this.#outcomes.length,
			failedProbes: this.#failedProbes,
		};
	}

	snapshot(): CircuitBreakerSnapshot {
		return {
			phase: this.#phase,
			openUntilMs: this.#openUntilMs,
			failedProbes: this.#failedProbes,
			probeStartedMs: this.#probeStartedMs,
			outcomes: this.#outcomes.map((outcome) => ({ ...outcome })),
		};
	}

	/** allow()'s retryAfterMs without taking the probe. */
	#peek(nowMs: number): number {
		if (nowMs < this.#openUntilMs) return this.#openUntilMs - nowMs;
		const probeTimesOutMs = this.#probeTimesOutMs();
		return nowMs < probeTimesOutMs ? Math.min(this.#openPeriodMs(), probeTimesOutMs - nowMs) : 0;
	}

	#probeTimesOutMs(): number {
		return this.#probeStartedMs === null
			? Number.NEGATIVE_INFINITY
			: this.#probeStartedMs + this.#options.probeTimeoutMs;
	}

	#openPeriodMs(): number {
		const { openBaseMs, openMaxMs } = this.#options;
		return Math.min(openMaxMs, openBaseMs * 2 ** Math.min(this.#failedProbes, 1023));
	}

	#open(nowMs: number): void {
		this.#phase = "open";
		this.#openUntilMs = nowMs + this.#openPeriodMs();
		this.#probeStartedMs = null;
	}

	/** A fresh start: the failures that opened the breaker must not open it again at once. */
	#close(): void {
		this.#phase = "closed";
		this.#failedProbes = 0;
		this.#probeStartedMs = null;
		this.#outcomes = [];
	}

	#record(nowMs: number, failed: boolean): void {
		this.#expire(nowMs);
		this.#outcomes.push({ atMs: nowMs, failed });
		if (this.#outcomes.length > this.#options.windowOutcomes) this.#outcomes.shift();
	}

	#expire(nowMs: number): void {
		const oldestKeptMs = nowMs - this.#options.windowMs;
		while (this.#outcomes.length > 0 && (this.#outcomes[0]?.atMs ?? 0) <= oldestKeptMs) {
			this.#outcomes.shift();
		}
	}

	#failures(): number {
		let failures = 0;
		for (const outcome of this.#outcomes) if (outcome.failed) failures++;
		return failures;
	}

	#tripped(): boolean {
		const failures = this.#failures();
		return (
			failures >= this.#options.minFailures &&
			failures >= this.#options.failureRatio * this.#outcomes.length
		);
	}

	/** Trusts only what makes sense: a snapshot from older code or garbage falls back to closed. */
	#restore(snapshot: CircuitBreakerSnapshot): void {
		const finite = (value: unknown): value is number =>
			typeof value === "number" && Number.isFinite(value);
		if (Array.isArray(snapshot.outcomes)) {
			this.#outcomes = snapshot.outcomes
				.filter((outcome) => finite(outcome?.atMs) && typeof outcome.failed === "boolean")
				.slice(-this.#options.windowOutcomes)
				.map(({ atMs, failed }) => ({ atMs, failed }));
		}
		if (snapshot.phase !== "open" || !finite(snapshot.openUntilMs)) return;
		this.#phase = "open";
		this.#openUntilMs = snapshot.openUntilMs;
		this.#failedProbes =
			Number.isSafeInteger(snapshot.failedProbes) && snapshot.failedProbes > 0
				? snapshot.failedProbes
				: 0;
		this.#probeStartedMs = finite(snapshot.probeStartedMs) ? snapshot.probeStartedMs : null;
	}
}
