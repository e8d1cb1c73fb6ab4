// How one pool's provider is doing, and what that allows: the circuit breaker gates every send,
// the retry budget and backoff decide whether and when a failed send goes again.
import {
	type BackoffOptions,
	backoffDelayMs,
	classifyFailure,
	DEFAULT_BACKOFF,
	type Failure,
} from "./backoff.ts";
import {
	type BreakerDecision,
	type BreakerStatus,
	CircuitBreaker,
	type CircuitBreakerSnapshot,
} from "./circuit-breaker.ts";
import { RetryBudget, type RetryBudgetSnapshot } from "./retry-budget.ts";

export interface ProviderHealthSnapshot {
	breaker: CircuitBreakerSnapshot;
	budget: RetryBudgetSnapshot;
}

/** After a failed send: go again after delayMs, or give the caller the failure (reason says why). */
export type RetryDecision =
	| { retry: true; delayMs: number; reason: string }
	| { retry: false; reason: string; retryAfterMs?: number };

export class ProviderHealth {
	readonly #breaker: CircuitBreaker;
	readonly #budget: RetryBudget;

	readonly #backoff: BackoffOptions;

	constructor(backoff: BackoffOptions = DEFAULT_BACKOFF, snapshot?: ProviderHealthSnapshot) {
		this.#backoff = backoff;
		this.#breaker = new CircuitBreaker(undefined, snapshot?.breaker);
		this.#budget = new RetryBudget(undefined, snapshot?.budget);
	}

	/** Whether a send may go upstream now; a first send also counts toward the retry budget. */
	gate(firstSend: boolean, nowMs: number): BreakerDecision {
		const decision = this.#breaker.allow(nowMs);
		if (decision.allowed && firstSend) this.#budget.recordRequest(nowMs);
		return decision;
	}

	/** The provider answered and it was not a failure of the provider's (any 2xx–4xx but 408/409/429). */
	succeeded(nowMs: number): void {
		this.#breaker.recordSuccess(nowMs);
	}

	/**
	 * Send number `attempt` (1 = the first) failed. Only failures of the provider count against the
	 * breaker; a retry needs attempts left, room in the retry budget and a breaker that is not open.
	 */
	failed(
		failure: Failure,
		attempt: number,
		maxAttempts: number,
		retryAfterMs: number | undefined,
		nowMs: number,
		random: () => number,
	): RetryDecision {
		const failureClass = classifyFailure(failure);
		if (!failureClass.retryable) {
			// A client error is a working provider. A 5xx the provider marks final (501, 505, or
			// x-should-retry: false) is about this request, not a sign the provider is down.
			if (failureClass.reason === "client_error" || failureClass.reason === "not_a_failure") {
				this.#breaker.recordSuccess(nowMs);
			}
			return { retry: false, reason: failureClass.reason };
		}
		if (failureClass.via === "pause") return { retry: false, reason: failureClass.reason };
		this.#breaker.recordFailure(nowMs);
		if (attempt >= maxAttempts) return { retry: false, reason: "attempts_exhausted" };
		const budget = this.#budget.canRetry(nowMs);
		if (!budget.allowed) return { retry: false, reason: budget.reason };
		if (this.#breaker.state(nowMs) === "open") {
			return {
				retry: false,
				reason: "circuit_open",
				retryAfterMs: this.#breaker.status(nowMs).retryAfterMs,
			};
		}
		this.#budget.recordRetry(nowMs);
		const delayMs = backoffDelayMs(attempt, { ...this.#backoff, retryAfterMs }, random);
		return { retry: true, delayMs, reason: failureClass.reason };
	}

	status(nowMs: number): BreakerStatus & { retryBudget: { retries: number; allowance: number } } {
		const { retries, allowance } = this.#budget.canRetry(nowMs);
		return { ...this.#breaker.status(nowMs), retryBudget: { retries, allowance } };
	}

	snapshot(): ProviderHealthSnapshot {
		return { breaker: this.#breaker.snapshot(), budget: this.#budget.snapshot() };
	}
}
