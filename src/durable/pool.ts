// The Pool Durable Object: one per upstream API key. A thin shell around the core Scheduler that
// persists its state in SQLite, wakes waiters on time, and reclaims abandoned leases by alarm.
import { DurableObject } from "cloudflare:workers";
import { loadConfig, type PoolConfig, poolLimits } from "../config.ts";
import type { Failure } from "../core/backoff.ts";
import { LearnedLimits, type LearnedLimitsSnapshot } from "../core/learned-limits.ts";
import type { ReportedLimits } from "../core/limit-learning.ts";
import type { Priority } from "../core/priority.ts";
import {
	ProviderHealth,
	type ProviderHealthSnapshot,
	type RetryDecision,
} from "../core/provider-health.ts";
import {
	type Ask,
	type Lease,
	type PoolStatus,
	type RateLimitView,
	type Rejection,
	Scheduler,
	type SchedulerSnapshot,
} from "../core/scheduler.ts";
import { TimeSeries, type TimeSeriesSnapshot } from "../core/time-series.ts";

export interface AcquireRequest {
	pool: string;
	ticketId: string;
	tenant: string;
	model: string;
	priority: Priority;
	tokens: number;
	/** How long the caller will wait in the queue, measured on this object's clock. */
	maxWaitMs: number;
	/** A re-send after a provider 429: it goes ahead of first attempts. */
	retry?: boolean;
	/** Time this request already waited in an instance of the object that restarted. */
	priorWaitMs?: number;
}

export type AcquireResult =
	| { kind: "admitted"; lease: Lease; queueMs: number; limits: RateLimitView }
	| (Rejection & { queueMs: number; limits: RateLimitView })
	| { kind: "cancelled"; queueMs: number; limits: RateLimitView }
	/** The provider is failing: the circuit breaker answers at once instead of queueing. */
	| {
			kind: "unavailable";
			retryAfterMs: number;
			message: string;
			queueMs: number;
			limits: RateLimitView;
	  };

/** A pool's live state for the admin API: the scheduler's view, the provider's health, and the
 * per-minute limits in force with where they come from (configured or learned). */
export type PoolObjectStatus = PoolStatus & {
	provider: ReturnType<ProviderHealth["status"]>;
	limitsInForce: ReturnType<LearnedLimits["current"]>;
};

/** What is stored: everything a restart must not lose. */
interface StoredState {
	scheduler: SchedulerSnapshot;
	health?: ProviderHealthSnapshot;
	learned?: LearnedLimitsSnapshot;
}

interface LoadedPool {
	config: PoolConfig;
	scheduler: Scheduler;
	health: ProviderHealth;
	learning: LearnedLimits;
}

interface Waiter {
	submittedMs: number;
	resolve(result: AcquireResult): void;
}

const SCHEMA_VERSION = 2;

/**
 * The longest a change waits before it is written. What a crash or restart can lose is the last
 * PERSIST_EVERY_MS of decisions: a few admissions' charges (the bucket comes back that much
 * fuller, an overshoot the provider's own bucket absorbs or a 429 pause corrects) and leases
 * admitted in that window (their requests finish anyway; only the concurrency count forgets
 * them). Nothing is ever refilled beyond that, and no waiter is lost silently: waiters live in
 * memory and their callers re-acquire after a restart.
 */
const PERSIST_EVERY_MS = 25;

export interface StorageStats {
	/** Writes of the state row: at most one per PERSIST_EVERY_MS, however many decisions. */
	writes: number;
	/** Rows SQLite reports written by them. */
	rowsWritten: number;
}

export class Pool extends DurableObject<Env> {
	/** The pool this object serves, loaded on its first call (an object is named by its pool). */
	private loaded: LoadedPool | undefined;
	private readonly waiters = new Map<string, Waiter>();
	private wakeTimer: ReturnType<typeof setTimeout> | null = null;
	private wakeAtMs = Number.POSITIVE_INFINITY;
	private persistTimer: ReturnType<typeof setTimeout> | null = null;
	private alarmAtMs: number | null = null;
	private readonly written: StorageStats = { writes: 0, rowsWritten: 0 };
	/** Admissions, refusals by reason, provider 429s, retries per second since this instance began. */
	private readonly events = new TimeSeries();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		ctx.blockConcurrencyWhile(async () => {
			this.migrate();
			this.alarmAtMs = await ctx.storage.getAlarm();
		});
	}

	/** Admits the request now, or once it fits (the promise stays pending while it waits). */
	async acquire(request: AcquireRequest): Promise<AcquireResult> {
		return this.submit(request);
	}

	/**
	 * Ends a lease, reconciling the reserved tokens with the provider's reported usage.
	 * `providerAnswered`: the provider answered without failing, which the breaker counts.
	 */
	async release(
		pool: string,
		ticketId: string,
		actualTokens?: number,
		providerAnswered = false,
		reported?: ReportedLimits,
	): Promise<void> {
		const { scheduler, health } = this.poolFor(pool);
		const now = Date.now();
		scheduler.release(ticketId, actualTokens, now);
		if (providerAnswered) health.succeeded(now);
		this.learnFrom(ticketId, reported, now);
		this.settle(now);
	}

	/**
	 * Send number `attempt` of a request failed at the provider (5xx, 529, connection, timeout).
	 * Its reservation is refunded, unless it timed out: the provider may still be working on it.
	 * Says whether the request may go again, and after how long.
	 */
	async failed(
		pool: string,
		ticketId: string,
		failure: Failure,
		attempt: number,
		maxAttempts: number,
		retryAfterMs?: number,
	): Promise<RetryDecision> {
		const { scheduler, health } = this.poolFor(pool);
		const now = Date.now();
		scheduler.release(ticketId, failure.kind === "timeout" ? undefined : 0, now);
		this.learnFrom(ticketId, undefined, now);
		const decision = health.failed(failure, attempt, maxAttempts, retryAfterMs, now, Math.random);
		if (decision.retry) this.events.add("retry", now);
		this.settle(now);
		return decision;
	}

	/**
	 * The provider answered 429 to `previousTicketId`: hold every admission of this pool until the
	 * provider said to come back, then admit `request` (its next attempt) ahead of first attempts.
	 * The first reservation stays charged: the provider counted that attempt against the key too.
	 */
	async rateLimited(
		previousTicketId: string,
		request: AcquireRequest,
		retryAfterMs: number,
		reported?: ReportedLimits,
	): Promise<AcquireResult> {
		const { scheduler } = this.poolFor(request.pool);
		const now = Date.now();
		scheduler.release(previousTicketId, undefined, now);
		this.learnFrom(previousTicketId, reported, now);
		scheduler.pauseUntil(now + retryAfterMs);
		this.events.add("provider_429", now);
		this.events.add("retry", now);
		return this.submit({ ...request, retry: true });
	}

	/** The caller went away while waiting: drop it from the queue, charging nothing. */
	async cancel(pool: string, ticketId: string): Promise<void> {
		const { scheduler } = this.poolFor(pool);
		if (!scheduler.cancel(ticketId)) return;
		const now = Date.now();
		const waiter = this.waiters.get(ticketId);
		this.waiters.delete(ticketId);
		waiter?.resolve({
			kind: "cancelled",
			queueMs: now - waiter.submittedMs,
			limits: scheduler.rateLimitView(now),
		});
		this.settle(now);
	}

	async status(pool: string): Promise<PoolObjectStatus> {
		const now = Date.now();
		const { scheduler, health, learning } = this.poolFor(pool);
		return {
			...scheduler.status(now),
			provider: health.status(now),
			limitsInForce: learning.current(),
		};
	}

	/** Events per second over the last five minutes, for the dashboard's charts. */
	async series(): Promise<TimeSeriesSnapshot> {
		return this.events.snapshot(Date.now());
	}

	/** What this instance has written to storage since it started, for benchmarks and operators. */
	async storageStats(): Promise<StorageStats> {
		return { ...this.written };
	}

	override async alarm(): Promise<void> {
		this.alarmAtMs = null;
		// Woken after eviction with leases outstanding: restore just enough to reclaim them.
		const pool = this.loaded?.config.name ?? this.storedPoolName();
		if (pool === undefined) return;
		this.poolFor(pool);
		this.settle(Date.now());
		this.persistNow();
	}

	private submit(request: AcquireRequest): Promise<AcquireResult> {
		const { scheduler, health, learning } = this.poolFor(request.pool);
		const now = Date.now();
		const gate = health.gate(request.retry !== true, now);
		if (!gate.allowed) {
			this.events.add(`refused:${gate.reason}`, now);
			const message =
				gate.reason === "circuit_open"
					? "The provider is failing for this pool; tollbooth stopped sending to it for a moment."
					: "The provider is failing for this pool; one request is testing whether it has recovered.";
			return Promise.resolve({
				kind: "unavailable",
				retryAfterMs: gate.retryAfterMs,
				message: `${message} Try again after retry-after.`,
				queueMs: 0,
				limits: scheduler.rateLimitView(now),
			});
		}
		const submittedMs = now - (request.priorWaitMs ?? 0);
		const ask: Ask = {
			ticketId: request.ticketId,
			tenant: request.tenant,
			model: request.model,
			priority: request.priority,
			tokens: request.tokens,
			deadlineMs: submittedMs + request.maxWaitMs,
			retry: request.retry === true,
			submittedMs,
		};
		const decision = scheduler.submit(ask, now);
		if (decision.kind === "admitted") learning.admitted(ask.ticketId, ask.tokens);
		if (decision.kind !== "queued") this.countDecision(decision, now);
		if (decision.kind === "queued") {
			const result = new Promise<AcquireResult>((resolve) => {
				this.waiters.set(ask.ticketId, { submittedMs, resolve });
			});
			this.settle(now);
			return result;
		}
		this.settle(now);
		return Promise.resolve({ ...decision, queueMs: 0, limits: scheduler.rateLimitView(now) });
	}

	/** Applies whatever time has made possible, persists, and arranges the next wake-up. */
	private settle(now: number): void {
		if (!this.loaded) return;
		const { scheduler, learning } = this.loaded;
		for (const { ticketId, result } of scheduler.tick(now)) {
			if (result.kind === "admitted") learning.admitted(ticketId, result.lease.tokens);
			this.countDecision(result, now);
			const waiter = this.waiters.get(ticketId);
			if (!waiter) continue;
			this.waiters.delete(ticketId);
			waiter.resolve({
				...result,
				queueMs: now - waiter.submittedMs,
				limits: scheduler.rateLimitView(now),
			});
		}
		this.scheduleWake(scheduler.nextWakeMs(now), now);
		this.persistSoon();
	}

	private countDecision(decision: { kind: "admitted" } | Rejection, now: number): void {
		this.events.add(decision.kind === "admitted" ? "admitted" : `refused:${decision.reason}`, now);
	}

	/** Waiters are woken by a timer of this instance: they exist only while it lives. */
	private scheduleWake(wakeMs: number | undefined, now: number): void {
		if (wakeMs === undefined) return;
		if (this.waiters.size > 0 && wakeMs < this.wakeAtMs) {
			if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
			this.wakeAtMs = wakeMs;
			this.wakeTimer = setTimeout(
				() => {
					this.wakeAtMs = Number.POSITIVE_INFINITY;
					this.settle(Date.now());
				},
				Math.max(0, wakeMs - now),
			);
		}
	}

	/**
	 * Changes are written at most every PERSIST_EVERY_MS, after the replies that made them: a reply
	 * never waits for a write, and a burst of decisions costs one write.
	 */
	private persistSoon(): void {
		if (this.persistTimer !== null) return;
		this.persistTimer = setTimeout(() => {
			this.persistTimer = null;
			this.persistNow();
		}, PERSIST_EVERY_MS);
	}

	private persistNow(): void {
		if (!this.loaded) return;
		const { scheduler, health, learning } = this.loaded;
		if (this.persistTimer !== null) clearTimeout(this.persistTimer);
		this.persistTimer = null;
		this.persist({
			scheduler: scheduler.snapshot(),
			health: health.snapshot(),
			learned: learning.snapshot(),
		});
		// The alarm outlives this instance: it reclaims leases whose holders vanished.
		const wakeMs = scheduler.nextWakeMs(Date.now());
		if (wakeMs !== undefined && (this.alarmAtMs === null || wakeMs < this.alarmAtMs)) {
			this.alarmAtMs = wakeMs;
			void this.ctx.storage.setAlarm(wakeMs);
		}
	}

	private poolFor(pool: string): LoadedPool {
		if (this.loaded) return this.loaded;
		const loaded = loadConfig(this.env.TOLLBOOTH_CONFIG);
		if (!loaded.ok) throw new Error(loaded.message);
		const config = loaded.config.pools.find((candidate) => candidate.name === pool);
		if (!config) throw new Error(`no pool named "${pool}" in the configuration`);
		const stored = this.storedState();
		const learning = new LearnedLimits(config.limits, stored?.learned);
		const scheduler = new Scheduler(
			{
				limits: poolLimits(config, learning.learned),
				leaseTtlMs: config.leaseTtlMs,
				maxQueueLength: config.maxQueueLength,
				maxQueuePerTenant: config.maxQueuePerTenant,
				maxWaitMsByPriority: config.maxWaitMs,
				agingBoundMs: config.agingBoundMs,
				tenants: Object.fromEntries(
					loaded.config.tenants.map((tenant) => [
						tenant.name,
						{ weight: tenant.weight, ...tenant.limits },
					]),
				),
			},
			stored?.scheduler,
		);
		const health = new ProviderHealth(undefined, stored?.health);
		this.ctx.storage.sql.exec(
			"INSERT INTO meta (key, value) VALUES ('pool', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
			pool,
		);
		this.loaded = { config, scheduler, health, learning };
		return this.loaded;
	}

	/**
	 * Reads the provider's rate-limit headers on the answer to `ticketId`: the pool lowers its
	 * buckets to the room the provider reports, and adopts a smaller (or, for "auto", any)
	 * advertised limit.
	 */
	private learnFrom(ticketId: string, reported: ReportedLimits | undefined, now: number): void {
		if (!this.loaded) return;
		const { scheduler, learning, config } = this.loaded;
		if (!reported) {
			learning.forget(ticketId);
			return;
		}
		const { requests, tokens } = scheduler.rateLimitView(now);
		const advice = learning.observe(ticketId, reported, {
			requests: requests.remaining,
			tokens: tokens.remaining,
		});
		if (advice?.lowerTo) scheduler.lowerTo(advice.lowerTo, now);
		if (advice?.adopt) scheduler.setLimits(poolLimits(config, learning.learned), now);
	}

	private migrate(): void {
		const sql = this.ctx.storage.sql;
		sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
		const row = sql
			.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")
			.toArray()[0];
		const version = row ? Number(row.value) : 0;
		if (version < 1) {
			sql.exec(
				"CREATE TABLE scheduler_state (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot TEXT NOT NULL)",
			);
		}
		if (version < 2) {
			// Version 2 stores the provider's health beside the scheduler's snapshot.
			sql.exec("UPDATE scheduler_state SET snapshot = json_object('scheduler', json(snapshot))");
		}
		if (version !== SCHEMA_VERSION) {
			sql.exec(
				"INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
				String(SCHEMA_VERSION),
			);
		}
	}

	private storedState(): StoredState | undefined {
		const row = this.ctx.storage.sql
			.exec<{ snapshot: string }>("SELECT snapshot FROM scheduler_state WHERE id = 1")
			.toArray()[0];
		return row ? (JSON.parse(row.snapshot) as StoredState) : undefined;
	}

	private storedPoolName(): string | undefined {
		return this.ctx.storage.sql
			.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'pool'")
			.toArray()[0]?.value;
	}

	private persist(state: StoredState): void {
		const cursor = this.ctx.storage.sql.exec(
			"INSERT INTO scheduler_state (id, snapshot) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot",
			JSON.stringify(state),
		);
		cursor.toArray();
		this.written.writes += 1;
		this.written.rowsWritten += cursor.rowsWritten;
	}
}
