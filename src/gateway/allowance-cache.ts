// The isolate's allowances from one Pool: requests admitted from them with no round trip, and a
// batch RPC when one is due (core/allowance-holder.ts: an ask within 5 ms, ended requests within
// 100 ms) that carries everything pending. Nothing on a response's path waits for it, and no request
// waits on another's promise (workerd cancels a request that does): batches run in the request
// that started their loop.

import type { AllowanceBatch, Pool, RateLimitView } from "../durable/pool.ts";
import {
	type AllowanceScope,
	ASK_DELAY_MS,
	type EndedSpend,
	PoolAllowanceHolder,
	type PoolDimension,
	type Spend,
} from "../durable/pool-allowances.ts";

/**
 * One loop of batches runs at most this long in the request that started it (a request's waitUntil
 * is bounded); then the next request to come starts a new one, which takes over.
 */
const PUMP_LIMIT_MS = 10_000;
/** A loop past its limit that no request took over within this long: the isolate is idle. */
const HANDOVER_MS = 1_000;

export interface AllowanceSpend {
	spend: Spend<PoolDimension>;
	scope: AllowanceScope;
	tokens: number;
	/** The pool's buckets as of the last batch: for the caller's rate-limit headers. */
	limits: RateLimitView;
}

type PoolNamespace = DurableObjectNamespace<Pool>;
type KeepAlive = (pump: Promise<void>) => void;

export class AllowanceCache {
	readonly #namespace: PoolNamespace;
	readonly #pool: string;
	readonly #holder: PoolAllowanceHolder;
	#limits: RateLimitView | undefined;
	/** The loop of batches in charge now, if any (an older one past its limit may still finish). */
	#loop: object | undefined;
	/** When that loop wakes next. */
	#loopWakeMs = 0;
	/** An ask goes by itself shortly (see #askSoon). */
	#askingSoon = false;

	constructor(namespace: PoolNamespace, pool: string, spendWindowMs: number) {
		this.#namespace = namespace;
		this.#pool = pool;
		this.#holder = new PoolAllowanceHolder(crypto.randomUUID(), spendWindowMs);
	}

	/**
	 * Admits a request of `tokens` for `scope` from an allowance, or undefined (then it asks the
	 * Pool as usual). Either way, asks for a grant in the next batch when the allowances run low.
	 */
	admit(scope: AllowanceScope, tokens: number, keepAlive: KeepAlive): AllowanceSpend | undefined {
		// Grants come only with an answer, which carries the limits: none before the first.
		const limits = this.#limits;
		const nowMs = Date.now();
		const spend = this.#holder.admit(scope, tokens, nowMs);
		if (this.#holder.asking && this.#loop && this.#loopWakeMs > nowMs + ASK_DELAY_MS) {
			this.#askSoon(keepAlive);
		} else {
			this.#start(keepAlive);
		}
		return spend && limits && { spend, scope, tokens, limits };
	}

	/** A request an allowance admitted is over: its slot comes back, its usage goes in a batch. */
	ended(
		spent: AllowanceSpend,
		ended: Omit<EndedSpend, "scope" | "tokens">,
		keepAlive: KeepAlive,
	): void {
		const endedSpend = { ...ended, scope: spent.scope, tokens: spent.tokens };
		this.#holder.ended(spent.spend, endedSpend, Date.now());
		this.#start(keepAlive);
	}

	/** A request an allowance admitted is still running: its grant is renewed in the next batch. */
	renew(spent: AllowanceSpend, keepAlive: KeepAlive): void {
		this.#holder.renew(spent.spend, Date.now());
		this.#start(keepAlive);
	}

	/** Stops spending (a send failed, or the Pool asked): what is left goes back in the next batch. */
	closeAll(keepAlive: KeepAlive): void {
		this.#holder.closeAll();
		this.#start(keepAlive);
	}

	/** Starts a loop of batches in the calling request, unless one is in charge already. */
	#start(keepAlive: KeepAlive): void {
		if (this.#loop || this.#holder.napMs(Date.now()) === undefined) return;
		const loop = {};
		this.#loop = loop;
		keepAlive(this.#run(loop));
	}

	/**
	 * An ask made while the loop naps for longer (until ended requests are due): sent by itself
	 * ASK_DELAY_MS from now, in the calling request, with whatever else is pending. (A request
	 * cannot wake the loop another one runs: that would make it wait on the other's promise.)
	 */
	#askSoon(keepAlive: KeepAlive): void {
		if (this.#askingSoon) return;
		this.#askingSoon = true;
		const send = async () => {
			await new Promise((woken) => setTimeout(woken, ASK_DELAY_MS));
			this.#askingSoon = false;
			const nowMs = Date.now();
			const batch = this.#holder.asking ? this.#holder.takeBatch(nowMs) : undefined;
			if (batch) await this.#send(batch, nowMs);
		};
		keepAlive(send());
	}

	/**
	 * Sends a batch whenever the holder has one due, until it has nothing left to do. Past
	 * PUMP_LIMIT_MS the loop hands over: the next request starts a new one and this one ends; if
	 * none comes within HANDOVER_MS and nothing is in flight, it gives back every grant first.
	 */
	async #run(loop: object): Promise<void> {
		const startedMs = Date.now();
		try {
			for (;;) {
				const napMs = this.#holder.napMs(Date.now());
				if (napMs === undefined) return;
				this.#loopWakeMs = Date.now() + napMs;
				await new Promise((woken) => setTimeout(woken, napMs));
				if (this.#loop !== loop && this.#loop !== undefined) return;
				const nowMs = Date.now();
				if (nowMs - startedMs >= PUMP_LIMIT_MS) {
					if (this.#loop === loop) this.#loop = undefined;
					const idle = nowMs - startedMs >= PUMP_LIMIT_MS + HANDOVER_MS;
					if (idle && this.#holder.inUse === 0) this.#holder.closeAll();
				}
				const batch = this.#holder.takeBatch(nowMs);
				if (batch) await this.#send(batch, nowMs);
			}
		} finally {
			if (this.#loop === loop) this.#loop = undefined;
		}
	}

	async #send(batch: AllowanceBatch, sentAtMs: number): Promise<void> {
		try {
			const answer = await this.#namespace.getByName(this.#pool).allowances(batch);
			this.#limits = answer.limits;
			this.#holder.answered(batch, answer, sentAtMs, Date.now());
		} catch (error) {
			// The Pool restarted or is unreachable: spend nothing more; it reclaims what was held.
			console.warn(
				JSON.stringify({ pool: this.#pool, allowances: "batch_failed", error: String(error) }),
			);
			this.#holder.failed(batch, Date.now());
		}
	}
}

const caches = new Map<string, AllowanceCache>();

/** This isolate's allowances from the pool named `pool` (one cache per pool per isolate). */
export function allowancesOf(
	namespace: PoolNamespace,
	pool: string,
	spendWindowMs: number,
): AllowanceCache {
	let cache = caches.get(pool);
	if (!cache) {
		cache = new AllowanceCache(namespace, pool, spendWindowMs);
		caches.set(pool, cache);
	}
	return cache;
}
