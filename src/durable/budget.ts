// The budget authority: one Durable Object per tenant (named by the tenant), a shell around the
// core BudgetBook that keeps open reservations and the exact usage ledger (per day, end user and
// model) in SQLite, and reclaims reservations whose Worker vanished.
import { DurableObject } from "cloudflare:workers";
import {
	type BudgetAdmission,
	type BudgetAsk,
	BudgetBook,
	type BudgetGrant,
	type GrantAsk,
	type GrantScope,
	type HeldBudgetGrant,
	type Settled,
} from "../core/budget.ts";
import type { Charge } from "../core/budget-cost.ts";
import type { GrantReturn } from "../core/budget-wallet.ts";
import { type LedgerAddition, ledgerAddition, sumPerRow } from "../core/usage-ledger.ts";

// What the gateway's side of budgets uses of the core: costs, windows, the isolate's wallet.
export type { BudgetLimits, Remaining } from "../core/budget.ts";
export { type Charge, chargeOf, estimatedCharge } from "../core/budget-cost.ts";
export { BudgetWallet, type GrantReturn, type WalletSpend } from "../core/budget-wallet.ts";
export { budgetWindows } from "../core/budget-windows.ts";
export type { BudgetAdmission, BudgetAsk, BudgetGrant, GrantAsk, GrantScope };

/** A request admitted from an allowance, as the ledger records it. */
export interface SpendEntry {
	grantId: string;
	scope: GrantScope;
	model: string;
	promptTokens: number;
	estimate: Charge;
}

/** What the provider reported for a settled request; undefined: unknown (the estimate stands). */
export interface SettledUsage {
	charge: Charge;
	inputTokens: number;
	cachedInputTokens: number;
	outputTokens: number;
}

export interface UsageRow {
	date: string;
	user?: string;
	model: string;
	requests: number;
	inputTokens: number;
	cachedInputTokens: number;
	outputTokens: number;
	costUsd: number;
}

/** A reservation not settled by then is charged at its estimate (its Worker is gone). */
export const RESERVATION_TTL_MS = 15 * 60_000;

/** Ledger days read back at start: enough for any month window in any time zone. */
const LEDGER_DAYS_LOADED = 33;

interface ReservationRow extends Record<string, SqlStorageValue> {
	id: string;
	user: string;
	model: string;
	tokens: number;
	nano_usd: number;
	prompt_tokens: number;
	day: string;
	month: string;
	reserved_ms: number;
}

export class TenantBudget extends DurableObject<Env> {
	readonly #sql: SqlStorage;
	#book = new BudgetBook();
	#alarmSet = false;
	/** Admissions this instance decided (requests spent from allowances never ask). */
	#admissions = 0;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		ctx.blockConcurrencyWhile(async () => {
			this.#sql.exec(`CREATE TABLE IF NOT EXISTS reservations (
				id TEXT PRIMARY KEY, user TEXT NOT NULL, model TEXT NOT NULL, tokens INTEGER NOT NULL,
				nano_usd INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, day TEXT NOT NULL,
				month TEXT NOT NULL, reserved_ms INTEGER NOT NULL)`);
			this.#sql.exec(`CREATE TABLE IF NOT EXISTS usage (
				date TEXT NOT NULL, user TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL,
				input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
				output_tokens INTEGER NOT NULL, nano_usd INTEGER NOT NULL, PRIMARY KEY (date, user, model))`);
			this.#sql.exec(`CREATE TABLE IF NOT EXISTS grants (id TEXT PRIMARY KEY, body TEXT NOT NULL)`);
			const saved = this.#sql
				.exec<{ body: string }>("SELECT body FROM grants")
				.toArray()
				.map((row) => JSON.parse(row.body) as HeldBudgetGrant);
			this.#book = new BudgetBook(saved);
			const since = new Date(Date.now() - LEDGER_DAYS_LOADED * 86_400_000)
				.toISOString()
				.slice(0, 10);
			for (const row of this.#sql.exec<{
				user: string;
				date: string;
				tokens: number;
				nano_usd: number;
			}>(
				`SELECT user, date, SUM(input_tokens + output_tokens) AS tokens, SUM(nano_usd) AS nano_usd
				FROM usage WHERE date >= ? GROUP BY user, date`,
				since,
			)) {
				this.#book.addUsed(row.user, row.date, { tokens: row.tokens, nanoUsd: row.nano_usd });
			}
			this.#alarmSet = (await ctx.storage.getAlarm()) !== null;
			for (const row of this.#sql.exec<ReservationRow>("SELECT * FROM reservations")) {
				this.#book.restore({
					id: row.id,
					user: row.user,
					model: row.model,
					estimate: { tokens: row.tokens, nanoUsd: row.nano_usd },
					promptTokens: row.prompt_tokens,
					day: row.day,
					month: row.month,
					reservedAtMs: row.reserved_ms,
				});
			}
		});
	}

	/**
	 * Reserves the request's estimate, on its model or the downgraded one, or refuses it; with
	 * `want`, also grants the isolate an allowance when the budget is far from its thresholds.
	 */
	async admit(ask: BudgetAsk, want?: GrantAsk): Promise<BudgetAdmission & { grant?: BudgetGrant }> {
		const now = Date.now();
		this.#admissions++;
		const admission = this.#book.admit(ask, now);
		if (admission.kind !== "reserved") return admission;
		const r = admission.reservation;
		this.#sql.exec(
			"INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			r.id,
			r.user,
			r.model,
			r.estimate.tokens,
			r.estimate.nanoUsd,
			r.promptTokens,
			r.day,
			r.month,
			r.reservedAtMs,
		);
		const grant = want && !admission.downgraded ? this.#book.grant(ask, want, now) : undefined;
		if (grant) this.#saveGrant(grant.id);
		await this.#armAlarm(now);
		return grant ? { ...admission, grant } : admission;
	}

	/**
	 * Requests an isolate admitted from its allowances have ended (usage undefined: unknown), in one
	 * call and one transaction; then the grants it is done with come back.
	 */
	async settleSpends(
		spends: { entry: SpendEntry; usage: SettledUsage | undefined }[],
		returns: GrantReturn[],
	): Promise<void> {
		this.ctx.storage.transactionSync(() => {
			const additions: LedgerAddition[] = [];
			for (const { entry, usage } of spends) {
				const charged = usage?.charge ?? entry.estimate;
				const { user, day, month } = entry.scope;
				// No grant: a request of a tenant without a budget, recorded only.
				if (entry.grantId)
					this.#book.settleSpend(entry.grantId, entry.scope, entry.estimate, charged);
				else this.#book.addUsed(user, day, charged);
				const reservation = { id: "", user, day, month, reservedAtMs: 0, ...entry };
				additions.push(ledgerAddition({ reservation, charged }, usage));
			}
			// A row written per day, user and model, not per request: rows written are billed.
			for (const row of sumPerRow(additions)) this.#addToLedger(row);
			for (const back of returns) this.#book.returnGrant(back.grantId, back.left, back.final);
			const grants = new Set([
				...spends.map(({ entry }) => entry.grantId),
				...returns.map((back) => back.grantId),
			]);
			for (const id of grants) if (id) this.#saveGrant(id);
		});
	}

	/** The isolate gives back what it did not spend of a grant. */
	async returnGrant(grantId: string, left: Charge, final: boolean): Promise<void> {
		this.#book.returnGrant(grantId, left, final);
		this.#saveGrant(grantId);
	}

	#saveGrant(id: string): void {
		const grant = this.#book.grantOf(id);
		if (grant) {
			this.#sql.exec(
				"INSERT INTO grants (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
				id,
				JSON.stringify(grant),
			);
		} else {
			this.#sql.exec("DELETE FROM grants WHERE id = ?", id);
		}
	}

	async #armAlarm(now: number): Promise<void> {
		if (this.#alarmSet) return;
		this.#alarmSet = true;
		await this.ctx.storage.setAlarm(now + RESERVATION_TTL_MS);
	}

	/** Ends a reservation with what the provider reported (undefined: charge the estimate). */
	async settle(id: string, usage: SettledUsage | undefined): Promise<void> {
		const settled = this.#book.settle(id, usage?.charge);
		if (settled) this.#record(settled, usage);
	}

	/** What the tenant (or one end user) used and holds reserved today and this month. */
	async status(timeZone = "UTC", user?: string) {
		return {
			admissions: this.#admissions,
			reservations: [...this.#book.reservations].length,
			grants: [...this.#book.grants].map((grant) => ({
				id: grant.id,
				outstanding: grant.outstanding,
			})),
			...this.#book.level(user, Date.now(), timeZone),
		};
	}

	/** Usage rows between two dates (inclusive), per model, or per end user and model. */
	async usage(from: string, to: string, byUser: boolean): Promise<UsageRow[]> {
		const user = byUser ? "user," : "";
		const rows = this.#sql.exec<Record<string, number | string>>(
			`SELECT date, ${user} model, SUM(requests) AS requests, SUM(input_tokens) AS input,
			SUM(cached_input_tokens) AS cached, SUM(output_tokens) AS output, SUM(nano_usd) AS nano_usd
			FROM usage WHERE date >= ? AND date <= ? GROUP BY date, ${user} model ORDER BY date, ${user} model`,
			from,
			to,
		);
		return rows.toArray().map((row) => ({
			date: String(row.date),
			...(byUser && { user: String(row.user) }),
			model: String(row.model),
			requests: Number(row.requests),
			inputTokens: Number(row.input),
			cachedInputTokens: Number(row.cached),
			outputTokens: Number(row.output),
			costUsd: Number(row.nano_usd) / 1e9,
		}));
	}

	override async alarm(): Promise<void> {
		const now = Date.now();
		for (const settled of this.#book.reclaim(now, RESERVATION_TTL_MS)) {
			this.#record(settled, undefined);
		}
		for (const grant of this.#book.reclaimGrants(now)) this.#saveGrant(grant.id);
		const next = Math.min(
			...[...this.#book.reservations].map((r) => r.reservedAtMs + RESERVATION_TTL_MS),
			this.#book.nextGrantReclaimMs() ?? Number.POSITIVE_INFINITY,
		);
		this.#alarmSet = Number.isFinite(next);
		if (this.#alarmSet) await this.ctx.storage.setAlarm(next);
	}

	#record(settled: Settled, usage: SettledUsage | undefined): void {
		const { id } = settled.reservation;
		if (id) this.#sql.exec("DELETE FROM reservations WHERE id = ?", id);
		this.#addToLedger(ledgerAddition(settled, usage));
	}

	#addToLedger(row: LedgerAddition): void {
		this.#sql.exec(
			`INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (date, user, model) DO UPDATE SET
			requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,
			cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
			output_tokens = output_tokens + excluded.output_tokens, nano_usd = nano_usd + excluded.nano_usd`,
			row.day,
			row.user,
			row.model,
			row.requests,
			row.inputTokens,
			row.cachedInputTokens,
			row.outputTokens,
			row.nanoUsd,
		);
	}
}
