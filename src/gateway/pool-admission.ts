// Admission for one request: from this isolate's allowance when it holds one (no round trip), else
// from the Pool. It speaks PoolClient's calls, so the request path does not care which it was.
import type { PoolConfig } from "../config.ts";
import { ALLOWANCE_SPEND_WINDOW_MS } from "../config.ts";
import type {
	AcquireRequest,
	AcquireResult,
	AttemptAnswer,
	AttemptReport,
	Pool,
	ReportedLimits,
} from "../durable/pool.ts";
import { type AllowanceSpend, allowancesOf } from "./allowance-cache.ts";
import { PoolClient } from "./pool-client.ts";

export class PoolAdmission {
	readonly #client: PoolClient;
	readonly #allowances;
	readonly #keepAlive: (promise: Promise<unknown>) => void;
	/** The ticket an allowance admitted, while its send is out. */
	#spent: { ticketId: string; spend: AllowanceSpend } | undefined;

	constructor(
		namespace: DurableObjectNamespace<Pool>,
		pool: PoolConfig,
		keepAlive: (promise: Promise<unknown>) => void,
	) {
		this.#client = new PoolClient(namespace, pool.name);
		this.#allowances = pool.allowances
			? allowancesOf(namespace, pool.name, ALLOWANCE_SPEND_WINDOW_MS)
			: undefined;
		this.#keepAlive = keepAlive;
	}

	/** Admits from an allowance at once when one holds the ask (a first send only), else asks the Pool. */
	acquire(ask: AcquireRequest, signal: AbortSignal): Promise<AcquireResult> {
		const scope = { tenant: ask.tenant, model: ask.model };
		const spend = this.#allowances?.admit(scope, ask.tokens, this.#keepAlive);
		if (!spend) return this.#client.acquire(ask, signal);
		this.#spent = { ticketId: ask.ticketId, spend };
		const nowMs = Date.now();
		return Promise.resolve({
			kind: "admitted",
			lease: {
				ticketId: ask.ticketId,
				tenant: ask.tenant,
				model: ask.model,
				tokens: ask.tokens,
				attempt: 1,
				admittedMs: nowMs,
				expiresMs: nowMs,
			},
			queueMs: 0,
			limits: spend.limits,
		});
	}

	/**
	 * A send did not succeed. One an allowance admitted ends there (what it cost goes in the next
	 * batch) and this isolate stops spending allowances; the Pool judges it like any other.
	 */
	attemptEnded(
		ticketId: string,
		report: AttemptReport,
		next: AcquireRequest,
		signal: AbortSignal,
	): Promise<AttemptAnswer> {
		if (this.#allowances && this.#spent?.ticketId === ticketId) {
			// As the Pool judges a lease: a 429 or a timeout keeps the estimate charged, else nothing.
			const kept = report.status === 429 || report.noAnswer === "timeout";
			this.#end(ticketId, kept ? undefined : 0, false, report.reported);
			this.#allowances.closeAll(this.#keepAlive);
		}
		return this.#client.attemptEnded(ticketId, report, next, signal);
	}

	/**
	 * Keeps a lease alive, or the grant an allowance's request spends from (renewed in the next
	 * batch: nothing waits for it, and the send carries on regardless).
	 */
	renew(ticketId: string): Promise<boolean> {
		const spent = this.#spent;
		if (!this.#allowances || spent?.ticketId !== ticketId) return this.#client.renew(ticketId);
		this.#allowances.renew(spent.spend, this.#keepAlive);
		return Promise.resolve(true);
	}

	/** Ends a lease, or the spend of an allowance (reported in the next batch, not waited for). */
	async release(
		ticketId: string,
		actualTokens: number | undefined,
		providerAnswered = false,
		reported?: ReportedLimits,
	): Promise<void> {
		if (this.#end(ticketId, actualTokens, providerAnswered, reported)) return;
		return this.#client.release(ticketId, actualTokens, providerAnswered, reported);
	}

	#end(
		ticketId: string,
		actualTokens: number | undefined,
		providerAnswered: boolean,
		reported: ReportedLimits | undefined,
	): boolean {
		const spent = this.#spent;
		if (!this.#allowances || spent?.ticketId !== ticketId) return false;
		this.#spent = undefined;
		const ended = {
			ticketId,
			providerAnswered,
			...(actualTokens !== undefined && { actualTokens }),
		};
		this.#allowances.ended(spent.spend, reported ? { ...ended, reported } : ended, this.#keepAlive);
		return true;
	}
}
