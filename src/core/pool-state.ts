// One pool's whole domain as a state machine: the scheduler (buckets, leases, queue), the
// provider's health (breaker, retry budget, backoff) and the limits learned from its headers,
// composed. Every decision about a send is made here; the Durable Object only keeps promises,
// timers and storage. Pure: time and randomness are passed in.
import { deferBackground } from "./background.ts";
import type { BackoffOptions, Failure } from "./backoff.ts";
import { classifyFailure } from "./backoff.ts";
import type { BreakerState } from "./circuit-breaker.ts";
import {
	type ConfiguredLimits,
	LearnedLimits,
	type LearnedLimitsSnapshot,
	type PerMinuteLimits,
	type ReportedLimits,
} from "./limit-learning.ts";
import type { PoolLimits } from "./limits.ts";
import {
	type AllowanceAnswer,
	type AllowanceBatch,
	type AllowancePolicy,
	PoolAllowances,
	type SavedGrant,
} from "./pool-allowances.ts";
import { ProviderHealth, type ProviderHealthSnapshot } from "./provider-health.ts";
import {
	type Ask,
	type Decision,
	type Outcome,
	type PoolStatus,
	type RateLimitView,
	Scheduler,
	type SchedulerOptions,
	type SchedulerSnapshot,
} from "./scheduler.ts";
import { TimeSeries, type TimeSeriesSnapshot } from "./time-series.ts";

export interface PoolStateOptions {
	scheduler: Omit<SchedulerOptions, "limits">;
	/** The limits as configured: numbers, or "auto". */
	configuredLimits: ConfiguredLimits;
	/** The pool's limits given what it learned from the provider so far. */
	limitsFor(learned: Partial<PerMinuteLimits>): PoolLimits;
	/** Sends of one request, counting the first. */
	maxAttempts: number;
	backoff: BackoffOptions;
	/** Allowances for Worker isolates; absent: every request asks the pool. */
	allowances?: AllowancePolicy;
}

/** What a restart must not lose. */
export interface PoolSnapshot {
	scheduler: SchedulerSnapshot;
	health?: ProviderHealthSnapshot;
	learned?: LearnedLimitsSnapshot;
	allowances?: SavedGrant[];
}

/** Admission, or the breaker's refusal while the provider is failing. */
export type Admission =
	| Decision
	| { kind: "unavailable"; reason: "circuit_open"; retryAfterMs: number; message: string };

/** How a send that did not succeed ended, as the Worker saw it: facts, not a verdict. */
export interface AttemptReport {
	/** The provider's status; absent when it did not answer at all. */
	status?: number;
	/** No answer: the connection failed, or no first byte came in time. */
	noAnswer?: "connection" | "timeout";
	/** The provider's `x-should-retry`. */
	shouldRetry?: boolean;
	retryAfterMs?: number;
	reported?: ReportedLimits;
}

/**
 * After a send that did not succeed: send again (after `delayMs`, as the next attempt, ahead of
 * first sends; a 429 has paused the whole pool instead), or give the caller the outcome.
 */
export type AttemptVerdict =
	| {
			kind: "again";
			/** How long before it asks again (a backoff), and how much longer it may then wait (a pause). */
			delayMs: number;
			extraWaitMs: number;
			attempt: number;
			reason: string;
	  }
	| { kind: "final"; reason: string; retryAfterMs?: number };

/** Something an operator wants to see in the logs and charts. */
export type PoolEvent =
	| { event: "pause"; untilMs: number; retryAfterMs: number }
	| { event: "retry"; reason: string; delayMs: number; attempt: number }
	| { event: "breaker"; from: BreakerState; to: BreakerState };

export type PoolStateStatus = PoolStatus & {
	provider: ReturnType<ProviderHealth["status"]>;
	limitsInForce: ReturnType<LearnedLimits["current"]>;
	/** What Worker isolates hold in allowances now. */
	allowances?: PoolAllowances["outstanding"];
};

/** Wait before resending after a provider 429 that named no retry-after (doubles per attempt). */
const DEFAULT_RETRY_AFTER_MS = 1000;

export class PoolState {
	readonly #options: PoolStateOptions;
	readonly #scheduler: Scheduler;
	readonly #health: ProviderHealth;
	readonly #learning: LearnedLimits;
	readonly #allowances: PoolAllowances | undefined;
	#events: PoolEvent[] = [];
	/** What the pool decided, per second, over the last minutes: for the operator's charts. */
	readonly #series = new TimeSeries();
	#breaker: BreakerState;

	constructor(options: PoolStateOptions, snapshot?: PoolSnapshot, nowMs = 0) {
		this.#options = options;
		this.#learning = new LearnedLimits(options.configuredLimits, snapshot?.learned);
		this.#scheduler = new Scheduler(
			{ ...options.scheduler, limits: options.limitsFor(this.#learning.learned) },
			snapshot?.scheduler,
		);
		this.#health = new ProviderHealth(options.backoff, snapshot?.health);
		if (options.allowances) {
			const saved = snapshot?.allowances;
			this.#allowances = new PoolAllowances(this.#scheduler, options.allowances, saved);
		}
		this.#breaker = this.#health.status(nowMs).state;
	}

	/** Admits the ask now, queues it, or turns it away: the breaker first, then the scheduler. */
	submit(ask: Ask, nowMs: number): Admission {
		// Background work is refused before the breaker: a batch line is never its probe.
		const deferred = ask.background
			? deferBackground(ask.tokens, this.status(nowMs), nowMs)
			: undefined;
		if (deferred) return deferred;
		const gate = this.#health.gate(ask.retry !== true && (ask.attempt ?? 1) === 1, nowMs);
		this.#noteBreaker(nowMs);
		if (!gate.allowed) {
			this.#series.add(`refused:${gate.reason}`, nowMs);
			const message =
				gate.reason === "circuit_open"
					? "The provider is failing for this pool; tollbooth stopped sending to it for a moment."
					: "The provider is failing for this pool; one request is testing whether it has recovered.";
			return {
				kind: "unavailable",
				reason: "circuit_open",
				retryAfterMs: gate.retryAfterMs,
				message: `${message} Try again after retry-after.`,
			};
		}
		const decision = this.#scheduler.submit(ask, nowMs);
		if (decision.kind === "admitted") this.#learning.admitted(ask.ticketId, ask.tokens);
		if (decision.kind !== "queued") this.#count(decision, nowMs);
		return decision;
	}

	cancel(ticketId: string): boolean {
		return this.#scheduler.cancel(ticketId);
	}

	/** The lease's holder is alive: it expires a lease lifetime from now. False once reclaimed. */
	renew(ticketId: string, nowMs: number): boolean {
		return this.#scheduler.renew(ticketId, nowMs);
	}

	/** The configuration's tenant policies changed: the next decision uses the new ones. */
	setTenants(tenants: SchedulerOptions["tenants"], nowMs: number): void {
		this.#scheduler.setTenants(tenants, nowMs);
	}

	/**
	 * A send ended with the provider's answer delivered (or the caller gone): the lease ends, its
	 * reservation reconciled with `actualTokens` (undefined keeps it), and the pool learns from the
	 * provider's headers. `providerAnswered`: the provider answered without failing.
	 */
	release(
		ticketId: string,
		actualTokens: number | undefined,
		providerAnswered: boolean,
		reported: ReportedLimits | undefined,
		nowMs: number,
	): void {
		const admittedMs = this.#scheduler.lease(ticketId)?.admittedMs;
		this.#scheduler.release(ticketId, actualTokens, nowMs);
		if (providerAnswered) this.#health.succeeded(nowMs);
		this.#learnFrom(ticketId, reported, nowMs, admittedMs);
		this.#noteBreaker(nowMs);
	}

	/**
	 * A send did not succeed: the provider answered with an error, or did not answer. The one place
	 * a failure is classified: a 429 pauses the pool for everyone until the provider's retry-after
	 * and goes again ahead of first sends; a failure a resend may cure goes again after a backoff
	 * while attempts and the retry budget allow; anything else is final.
	 */
	attemptEnded(
		ticketId: string,
		report: AttemptReport,
		nowMs: number,
		random: () => number,
	): AttemptVerdict {
		const lease = this.#scheduler.lease(ticketId);
		const attempt = lease?.attempt ?? 1;
		const { maxAttempts } = this.#options;
		if (report.status === 429) {
			// The provider counted this attempt against the key too: its reservation stays charged.
			this.#scheduler.release(ticketId, undefined, nowMs);
			this.#learnFrom(ticketId, report.reported, nowMs, lease?.admittedMs);
			const retryAfterMs = report.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS * 2 ** (attempt - 1);
			this.#scheduler.pauseUntil(nowMs + retryAfterMs);
			this.#events.push({ event: "pause", untilMs: nowMs + retryAfterMs, retryAfterMs });
			this.#series.add("provider_429", nowMs);
			if (attempt >= maxAttempts) {
				return { kind: "final", reason: "provider_rate_limited", retryAfterMs };
			}
			this.#series.add("retry", nowMs);
			return {
				kind: "again",
				delayMs: 0,
				extraWaitMs: retryAfterMs,
				attempt: attempt + 1,
				reason: "rate_limited",
			};
		}
		const failure: Failure =
			report.status === undefined
				? { kind: report.noAnswer ?? "connection" }
				: { status: report.status, shouldRetry: report.shouldRetry };
		const failureClass = classifyFailure(failure);
		if (!failureClass.retryable) {
			// An answer passed on as it is: the provider did no billable work.
			this.#scheduler.release(ticketId, 0, nowMs);
			this.#learnFrom(ticketId, report.reported, nowMs, lease?.admittedMs);
		} else {
			// It may still be working on a request that timed out: keep that reservation.
			this.#scheduler.release(ticketId, failure.kind === "timeout" ? undefined : 0, nowMs);
			this.#learnFrom(ticketId, undefined, nowMs);
		}
		const decision = this.#health.failed(
			failure,
			attempt,
			maxAttempts,
			report.retryAfterMs,
			nowMs,
			random,
		);
		this.#noteBreaker(nowMs);
		if (!failureClass.retryable && report.status !== undefined) {
			// Not a failure a resend may cure: the provider's answer goes to the caller as it is.
			return { kind: "final", reason: `provider_${report.status}` };
		}
		if (!decision.retry) {
			return decision.retryAfterMs === undefined
				? { kind: "final", reason: decision.reason }
				: { kind: "final", reason: decision.reason, retryAfterMs: decision.retryAfterMs };
		}
		this.#series.add("retry", nowMs);
		this.#events.push({
			event: "retry",
			reason: decision.reason,
			delayMs: decision.delayMs,
			attempt,
		});
		return {
			kind: "again",
			delayMs: decision.delayMs,
			extraWaitMs: 0,
			attempt: attempt + 1,
			reason: decision.reason,
		};
	}

	/**
	 * One isolate's allowance batch (src/core/pool-allowances.ts): its ended requests, reconciled
	 * and learned from like releases; what it gives back; new grants, only while the provider is
	 * healthy and the pool idle and far from its limits.
	 */
	settleAllowances(batch: AllowanceBatch, nowMs: number): AllowanceAnswer {
		const allowances = this.#allowances;
		for (const ended of batch.ended) {
			const extra = ended.actualTokens === undefined ? 0 : ended.actualTokens - ended.tokens;
			allowances?.reconcile(ended.scope, extra, nowMs);
			if (ended.providerAnswered) this.#health.succeeded(nowMs);
			if (ended.reported) this.#learning.admitted(ended.ticketId, ended.tokens);
			this.#learnFrom(ended.ticketId, ended.reported, nowMs);
		}
		// Admitted from allowances, counted as they end: the operator's charts show every admission.
		if (batch.ended.length > 0) this.#series.add("admitted", nowMs, batch.ended.length);
		this.#noteBreaker(nowMs);
		for (const report of batch.reports) allowances?.report(report, nowMs);
		if (!allowances?.open(nowMs) || this.#health.status(nowMs).state !== "closed") {
			return { grants: [], open: false };
		}
		const grants = batch.asks.flatMap(
			({ scope, want }) => allowances.grant(batch.holder, scope, want, nowMs) ?? [],
		);
		return { grants, open: true };
	}

	/** Applies what time has made possible: expired leases and grants, admissions, deadlines. */
	tick(nowMs: number): Outcome[] {
		this.#allowances?.reclaim(nowMs);
		const outcomes = this.#scheduler.tick(nowMs);
		for (const { ticketId, result } of outcomes) {
			if (result.kind === "admitted") this.#learning.admitted(ticketId, result.lease.tokens);
			this.#count(result, nowMs);
		}
		return outcomes;
	}

	nextWakeMs(nowMs: number): number | undefined {
		const wakeMs = this.#scheduler.nextWakeMs(nowMs);
		const reclaimMs = this.#allowances?.nextReclaimMs();
		if (reclaimMs === undefined) return wakeMs;
		return Math.max(nowMs, Math.min(reclaimMs, wakeMs ?? Number.POSITIVE_INFINITY));
	}

	/** The events since the last call, oldest first. */
	drainEvents(): PoolEvent[] {
		const events = this.#events;
		this.#events = [];
		return events;
	}

	rateLimitView(nowMs: number): RateLimitView {
		return this.#scheduler.rateLimitView(nowMs);
	}

	status(nowMs: number): PoolStateStatus {
		return {
			...this.#scheduler.status(nowMs),
			provider: this.#health.status(nowMs),
			limitsInForce: this.#learning.current(),
			...(this.#allowances && { allowances: { ...this.#allowances.outstanding } }),
		};
	}

	/** Admissions, refusals by reason, provider 429s and retries per second, oldest first. */
	series(nowMs: number): TimeSeriesSnapshot {
		return this.#series.snapshot(nowMs);
	}

	snapshot(): PoolSnapshot {
		return {
			scheduler: this.#scheduler.snapshot(),
			health: this.#health.snapshot(),
			learned: this.#learning.snapshot(),
			...(this.#allowances && { allowances: this.#allowances.snapshot() }),
		};
	}

	/**
	 * Reads the provider's rate-limit headers on the answer to `ticketId`: the pool lowers its
	 * buckets to the room the provider reports, and adopts a smaller (or, for "auto", any)
	 * advertised limit.
	 */
	#learnFrom(
		ticketId: string,
		reported: ReportedLimits | undefined,
		nowMs: number,
		admittedMs?: number,
	): void {
		if (!reported) {
			this.#learning.forget(ticketId);
			return;
		}
		const { requests, tokens } = this.#scheduler.rateLimitView(nowMs);
		const advice = this.#learning.observe(ticketId, reported, {
			requests: requests.remaining,
			tokens: tokens.remaining,
		});
		const lowerTo = advice?.lowerTo;
		if (lowerTo) {
			// The provider counted its room when the request reached it, at most this long ago; it has
			// refilled since. Without that credit every answer's stale count would ratchet our bucket
			// below the provider's, and the difference would never be sent.
			const sinceMs = Math.max(0, nowMs - (admittedMs ?? nowMs));
			if (lowerTo.requests !== undefined) {
				lowerTo.requests += (requests.limitPerMinute * sinceMs) / 60_000;
			}
			if (lowerTo.tokens !== undefined)
				lowerTo.tokens += (tokens.limitPerMinute * sinceMs) / 60_000;
			this.#scheduler.lowerTo(lowerTo, nowMs);
		}
		if (advice?.adopt) {
			this.#scheduler.setLimits(this.#options.limitsFor(this.#learning.learned), nowMs);
		}
	}

	#count(decision: { kind: "admitted" } | { kind: "rejected"; reason: string }, nowMs: number) {
		this.#series.add(
			decision.kind === "admitted" ? "admitted" : `refused:${decision.reason}`,
			nowMs,
		);
	}

	#noteBreaker(nowMs: number): void {
		const state = this.#health.status(nowMs).state;
		if (state !== this.#breaker)
			this.#events.push({ event: "breaker", from: this.#breaker, to: state });
		this.#breaker = state;
	}
}
