// The Pool Durable Object: one per upstream API key, named by its pool. A shell around the core
// PoolState that keeps what is the runtime's: waiters' promises, timers, the alarm, SQLite.
import { DurableObject } from "cloudflare:workers";
import { type ConfigResult, loadConfig, type PoolConfig, poolStateOptions } from "../config.ts";
import type { ReportedLimits } from "../core/limit-learning.ts";
import type { AllowanceAnswer, AllowanceBatch } from "../core/pool-allowances.ts";
import { type Admission, type AttemptReport, PoolState } from "../core/pool-state.ts";
import type { RateLimitView } from "../core/scheduler.ts";
import type { TimeSeriesSnapshot } from "../core/time-series.ts";
import type { AcquireRequest, AcquireResult, AttemptAnswer, PoolObjectStatus } from "./pool-api.ts";
import { logPoolEvent } from "./pool-events.ts";
import { PoolStorage } from "./pool-storage.ts";
import { PoolTenants } from "./pool-tenants.ts";

export * from "./pool-api.ts";

interface Waiter {
	submittedMs: number;
	resolve(result: AcquireResult): void;
	/** A send waiting out its backoff before it asks again. */
	backoff?: ReturnType<typeof setTimeout>;
}

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

/** An object's name is its pool's; a suffix after "/" names a separate instance (tests use one each). */
export function poolNameOf(objectName: string): string {
	return objectName.split("/", 1)[0] as string;
}

export class Pool extends DurableObject<Env> {
	#state: PoolState | undefined;
	/** TOLLBOOTH_CONFIG's tenants and the registry's runtime tenants, as the scheduler sees them. */
	#tenants: PoolTenants | undefined;
	#config: PoolConfig | undefined;
	/** The configuration the pool was built or last updated from. */
	#loaded: ConfigResult | undefined;
	readonly #waiters = new Map<string, Waiter>();
	#wakeTimer: ReturnType<typeof setTimeout> | null = null;
	#wakeAtMs = Number.POSITIVE_INFINITY;
	#persistTimer: ReturnType<typeof setTimeout> | null = null;
	#alarmAtMs: number | null = null;
	readonly #written: StorageStats = { writes: 0, rowsWritten: 0 };
	readonly #storage: PoolStorage;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#storage = new PoolStorage(ctx.storage.sql);
		ctx.blockConcurrencyWhile(async () => {
			this.#storage.migrate();
			this.#alarmAtMs = await ctx.storage.getAlarm();
		});
	}

	/** Admits the request now, or once it fits (the promise stays pending while it waits). */
	async acquire(request: AcquireRequest): Promise<AcquireResult> {
		const learning = this.#tenantsKnown([request.tenant]);
		if (learning) await learning;
		return this.#submit(request, 1);
	}

	/**
	 * Ends a lease, reconciling the reserved tokens with the provider's reported usage (undefined
	 * keeps the reservation). `providerAnswered`: the provider answered without failing.
	 */
	async release(
		ticketId: string,
		actualTokens?: number,
		providerAnswered = false,
		reported?: ReportedLimits,
	): Promise<void> {
		const now = Date.now();
		this.#pool().release(ticketId, actualTokens, providerAnswered, reported, now);
		this.#settle(now);
	}

	/**
	 * The lease's holder is still at work (a stream, a long answer): its lease expires a lease
	 * lifetime from now. False when it was reclaimed already; the holder carries on regardless.
	 */
	async renew(ticketId: string): Promise<boolean> {
		const alive = this.#pool().renew(ticketId, Date.now());
		if (alive) this.#persistSoon();
		return alive;
	}

	/**
	 * A send did not succeed (`report` says how). The Pool decides: the request goes again — after
	 * a backoff, or after the pool-wide pause a 429 starts — and this resolves with that send's
	 * admission; or it is final, and the caller gets the provider's answer or tollbooth's own.
	 */
	async attemptEnded(
		ticketId: string,
		report: AttemptReport,
		next: AcquireRequest,
	): Promise<AttemptAnswer> {
		const now = Date.now();
		const pool = this.#pool();
		const verdict = pool.attemptEnded(ticketId, report, now, Math.random);
		this.#settle(now);
		if (verdict.kind === "final")
			return { ...verdict, queueMs: 0, limits: pool.rateLimitView(now) };
		const again = { ...next, maxWaitMs: next.maxWaitMs + verdict.extraWaitMs };
		if (verdict.delayMs === 0) return this.#submit(again, verdict.attempt);
		return new Promise<AcquireResult>((resolve) => {
			const waiter: Waiter = { submittedMs: now, resolve };
			waiter.backoff = setTimeout(() => {
				this.#waiters.delete(next.ticketId);
				this.#submit(again, verdict.attempt).then(resolve);
			}, verdict.delayMs);
			this.#waiters.set(next.ticketId, waiter);
		});
	}

	/**
	 * One isolate's allowance batch: requests its allowances admitted that have ended, what it
	 * gives back, its asks for new grants. Answers the grants and whether to keep spending.
	 */
	async allowances(
		batch: AllowanceBatch,
	): Promise<AllowanceAnswer & { limits: RateLimitView; nowMs: number }> {
		const learning = this.#tenantsKnown(batch.asks.map((ask) => ask.scope.tenant));
		if (learning) await learning;
		const now = Date.now();
		const pool = this.#pool();
		const answer = pool.settleAllowances(batch, now);
		this.#settle(now);
		return { ...answer, limits: pool.rateLimitView(now), nowMs: now };
	}

	/** The caller went away while waiting: drop it from the queue, charging nothing. */
	async cancel(ticketId: string): Promise<void> {
		const waiter = this.#waiters.get(ticketId);
		const pool = this.#pool();
		if (!waiter?.backoff && !pool.cancel(ticketId)) return;
		clearTimeout(waiter?.backoff);
		this.#waiters.delete(ticketId);
		const now = Date.now();
		waiter?.resolve({
			kind: "cancelled",
			queueMs: now - waiter.submittedMs,
			limits: pool.rateLimitView(now),
		});
		this.#settle(now);
	}

	/** Admissions, refusals by reason, provider 429s and retries per second (the admin series). */
	async series(): Promise<TimeSeriesSnapshot> {
		return this.#pool().series(Date.now());
	}

	async status(): Promise<PoolObjectStatus> {
		return this.#pool().status(Date.now());
	}

	/** What this instance has written to storage since it started, for benchmarks and operators. */
	async storageStats(): Promise<StorageStats> {
		return { ...this.#written };
	}

	override async alarm(): Promise<void> {
		this.#alarmAtMs = null;
		// Woken after eviction with leases outstanding: restore just enough to reclaim them.
		this.#pool();
		this.#settle(Date.now());
		this.#persistNow();
	}

	/** Undefined at once when the pool has every tenant's policy; else waits for the registry. */
	#tenantsKnown(tenants: string[]): Promise<unknown> | undefined {
		this.#pool();
		const nowMs = Date.now();
		const lookups = tenants.map((tenant) => this.#tenants?.ready(tenant, nowMs)).filter(Boolean);
		return lookups.length > 0 ? Promise.all(lookups) : undefined;
	}

	#submit(request: AcquireRequest, attempt: number): Promise<AcquireResult> {
		const pool = this.#pool();
		const now = Date.now();
		const submittedMs = now - (request.priorWaitMs ?? 0);
		const decision: Admission = pool.submit(
			{
				ticketId: request.ticketId,
				tenant: request.tenant,
				model: request.model,
				priority: request.priority,
				tokens: request.tokens,
				deadlineMs: submittedMs + request.maxWaitMs,
				retry: attempt > 1,
				attempt,
				submittedMs,
				background: request.background === true,
			},
			now,
		);
		if (decision.kind === "queued") {
			const result = new Promise<AcquireResult>((resolve) => {
				this.#waiters.set(request.ticketId, { submittedMs, resolve });
			});
			this.#settle(now);
			return result;
		}
		this.#settle(now);
		return Promise.resolve({ ...decision, queueMs: 0, limits: pool.rateLimitView(now) });
	}

	/** Applies whatever time has made possible, persists, and arranges the next wake-up. */
	#settle(now: number): void {
		const pool = this.#state;
		if (!pool) return;
		for (const { ticketId, result } of pool.tick(now)) {
			const waiter = this.#waiters.get(ticketId);
			if (!waiter) continue;
			this.#waiters.delete(ticketId);
			waiter.resolve({
				...result,
				queueMs: now - waiter.submittedMs,
				limits: pool.rateLimitView(now),
			});
		}
		for (const event of pool.drainEvents()) logPoolEvent(this.#config?.name, event);
		this.#scheduleWake(pool.nextWakeMs(now), now);
		this.#persistSoon();
	}

	/** Waiters are woken by a timer of this instance: they exist only while it lives. */
	#scheduleWake(wakeMs: number | undefined, now: number): void {
		if (wakeMs === undefined || this.#waiters.size === 0 || wakeMs >= this.#wakeAtMs) return;
		if (this.#wakeTimer !== null) clearTimeout(this.#wakeTimer);
		this.#wakeAtMs = wakeMs;
		this.#wakeTimer = setTimeout(
			() => {
				this.#wakeAtMs = Number.POSITIVE_INFINITY;
				this.#settle(Date.now());
			},
			Math.max(0, wakeMs - now),
		);
	}

	/**
	 * Changes are written at most every PERSIST_EVERY_MS, after the replies that made them: a reply
	 * never waits for a write, and a burst of decisions costs one write.
	 */
	#persistSoon(): void {
		if (this.#persistTimer !== null) return;
		this.#persistTimer = setTimeout(() => {
			this.#persistTimer = null;
			this.#persistNow();
		}, PERSIST_EVERY_MS);
	}

	#persistNow(): void {
		const pool = this.#state;
		if (!pool) return;
		if (this.#persistTimer !== null) clearTimeout(this.#persistTimer);
		this.#persistTimer = null;
		this.#written.rowsWritten += this.#storage.save(pool.snapshot());
		this.#written.writes += 1;
		// The alarm outlives this instance: it reclaims leases whose holders vanished.
		const wakeMs = pool.nextWakeMs(Date.now());
		if (wakeMs !== undefined && (this.#alarmAtMs === null || wakeMs < this.#alarmAtMs)) {
			this.#alarmAtMs = wakeMs;
			void this.ctx.storage.setAlarm(wakeMs);
		}
	}

	/** The pool this object serves, built on first use from the configuration and stored state. */
	#pool(): PoolState {
		const loaded = loadConfig(this.env.TOLLBOOTH_CONFIG);
		if (this.#state && loaded === this.#loaded) return this.#state;
		if (!loaded.ok) throw new Error(loaded.message);
		this.#loaded = loaded;
		if (this.#state && this.#tenants) {
			// The configuration changed: tenants' weights and limits apply from the next decision.
			this.#tenants.setConfigured(loaded.config.tenants);
			return this.#state;
		}
		const name = poolNameOf(this.ctx.id.name ?? "");
		const config = loaded.config.pools.find((candidate) => candidate.name === name);
		if (!config) throw new Error(`no pool named "${name}" in the configuration`);
		this.#config = config;
		const options = poolStateOptions(config, loaded.config.tenants);
		const state = new PoolState(options, this.#storage.load(), Date.now());
		this.#state = state;
		this.#tenants = new PoolTenants(name, this.env.REGISTRY, (tenants) =>
			state.setTenants(tenants, Date.now()),
		);
		this.#tenants.setConfigured(loaded.config.tenants);
		return state;
	}
}
