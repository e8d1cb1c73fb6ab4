// The Pool Durable Object: one per upstream API key. A thin shell around the core Scheduler that
// persists its state in SQLite, wakes waiters on time, and reclaims abandoned leases by alarm.
import { DurableObject } from "cloudflare:workers";
import { loadConfig, poolLimits } from "../config.ts";
import type { Priority } from "../core/priority.ts";
import {
	type Ask,
	type Lease,
	type PoolStatus,
	type Rejection,
	Scheduler,
	type SchedulerSnapshot,
} from "../core/scheduler.ts";

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
	| { kind: "admitted"; lease: Lease; queueMs: number; status: PoolStatus }
	| (Rejection & { queueMs: number; status: PoolStatus })
	| { kind: "cancelled"; queueMs: number; status: PoolStatus };

interface Waiter {
	submittedMs: number;
	resolve(result: AcquireResult): void;
}

const SCHEMA_VERSION = 1;

export interface StorageStats {
	/** Persist calls: one per settle (an acquire, a release, a wake-up). */
	writes: number;
	/** Rows SQLite reports written by them. */
	rowsWritten: number;
}

export class Pool extends DurableObject<Env> {
	private scheduler: Scheduler | undefined;
	private readonly waiters = new Map<string, Waiter>();
	private wakeTimer: ReturnType<typeof setTimeout> | null = null;
	private wakeAtMs = Number.POSITIVE_INFINITY;
	private alarmAtMs: number | null = null;
	private readonly written: StorageStats = { writes: 0, rowsWritten: 0 };

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

	/** Ends a lease, reconciling the reserved tokens with the provider's reported usage. */
	async release(pool: string, ticketId: string, actualTokens?: number): Promise<PoolStatus> {
		const scheduler = this.schedulerFor(pool);
		const now = Date.now();
		scheduler.release(ticketId, actualTokens, now);
		this.settle(now);
		return scheduler.status(now);
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
	): Promise<AcquireResult> {
		const scheduler = this.schedulerFor(request.pool);
		const now = Date.now();
		scheduler.release(previousTicketId, undefined, now);
		scheduler.pauseUntil(now + retryAfterMs);
		return this.submit({ ...request, retry: true });
	}

	/** The caller went away while waiting: drop it from the queue, charging nothing. */
	async cancel(pool: string, ticketId: string): Promise<void> {
		const scheduler = this.schedulerFor(pool);
		if (!scheduler.cancel(ticketId)) return;
		const now = Date.now();
		const waiter = this.waiters.get(ticketId);
		this.waiters.delete(ticketId);
		waiter?.resolve({
			kind: "cancelled",
			queueMs: now - waiter.submittedMs,
			status: scheduler.status(now),
		});
		this.settle(now);
	}

	async status(pool: string): Promise<PoolStatus> {
		return this.schedulerFor(pool).status(Date.now());
	}

	/** What this instance has written to storage since it started, for benchmarks and operators. */
	async storageStats(): Promise<StorageStats> {
		return { ...this.written };
	}

	override async alarm(): Promise<void> {
		this.alarmAtMs = null;
		if (this.scheduler) {
			this.settle(Date.now());
			return;
		}
		// Woken after eviction with leases outstanding: restore just enough to reclaim them.
		const pool = this.storedPoolName();
		if (pool !== undefined) this.settle(Date.now(), this.schedulerFor(pool));
	}

	private submit(request: AcquireRequest): Promise<AcquireResult> {
		const scheduler = this.schedulerFor(request.pool);
		const now = Date.now();
		const ask: Ask = {
			ticketId: request.ticketId,
			tenant: request.tenant,
			model: request.model,
			priority: request.priority,
			tokens: request.tokens,
			deadlineMs: now + request.maxWaitMs,
			retry: request.retry === true,
		};
		const decision = scheduler.submit(ask, now);
		if (decision.kind === "queued") {
			const result = new Promise<AcquireResult>((resolve) => {
				this.waiters.set(ask.ticketId, { submittedMs: now, resolve });
			});
			this.settle(now);
			return result;
		}
		this.settle(now);
		return Promise.resolve({ ...decision, queueMs: 0, status: scheduler.status(now) });
	}

	/** Applies whatever time has made possible, persists, and arranges the next wake-up. */
	private settle(now: number, scheduler = this.scheduler): void {
		if (!scheduler) return;
		for (const { ticketId, result } of scheduler.tick(now)) {
			const waiter = this.waiters.get(ticketId);
			if (!waiter) continue;
			this.waiters.delete(ticketId);
			waiter.resolve({
				...result,
				queueMs: now - waiter.submittedMs,
				status: scheduler.status(now),
			});
		}
		this.persist(scheduler.snapshot());
		this.scheduleWake(scheduler.nextWakeMs(now), now);
	}

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
		// The alarm outlives this instance: it reclaims leases whose holders vanished.
		if (this.alarmAtMs === null || wakeMs < this.alarmAtMs) {
			this.alarmAtMs = wakeMs;
			void this.ctx.storage.setAlarm(wakeMs);
		}
	}

	private schedulerFor(pool: string): Scheduler {
		if (this.scheduler) return this.scheduler;
		const loaded = loadConfig(this.env.TOLLBOOTH_CONFIG);
		if (!loaded.ok) throw new Error(loaded.message);
		const config = loaded.config.pools.find((candidate) => candidate.name === pool);
		if (!config) throw new Error(`no pool named "${pool}" in the configuration`);
		this.scheduler = new Scheduler(
			{
				limits: poolLimits(config),
				leaseTtlMs: config.leaseTtlMs,
				maxQueueLength: config.maxQueueLength,
			},
			this.storedSnapshot(),
		);
		this.ctx.storage.sql.exec(
			"INSERT INTO meta (key, value) VALUES ('pool', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
			pool,
		);
		return this.scheduler;
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
		if (version !== SCHEMA_VERSION) {
			sql.exec(
				"INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
				String(SCHEMA_VERSION),
			);
		}
	}

	private storedSnapshot(): SchedulerSnapshot | undefined {
		const row = this.ctx.storage.sql
			.exec<{ snapshot: string }>("SELECT snapshot FROM scheduler_state WHERE id = 1")
			.toArray()[0];
		return row ? (JSON.parse(row.snapshot) as SchedulerSnapshot) : undefined;
	}

	private storedPoolName(): string | undefined {
		return this.ctx.storage.sql
			.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'pool'")
			.toArray()[0]?.value;
	}

	private persist(snapshot: SchedulerSnapshot): void {
		const cursor = this.ctx.storage.sql.exec(
			"INSERT INTO scheduler_state (id, snapshot) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot",
			JSON.stringify(snapshot),
		);
		cursor.toArray();
		this.written.writes += 1;
		this.written.rowsWritten += cursor.rowsWritten;
	}
}
