// The budget authority: one Durable Object per tenant (named by the tenant), a shell around the
// core BudgetBook that keeps open reservations and the exact usage ledger (per day, end user and
// model) in SQLite, and reclaims reservations whose Worker vanished.
import { DurableObject } from "cloudflare:workers";
import { type BudgetAdmission, type BudgetAsk, BudgetBook, type Settled } from "../core/budget.ts";
import type { Charge } from "../core/budget-cost.ts";

export type { BudgetAdmission, BudgetAsk };

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
	readonly #book = new BudgetBook();
	#alarmSet = false;

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

	/** Reserves the request's estimate, on its model or the downgraded one, or refuses it. */
	async admit(ask: BudgetAsk): Promise<BudgetAdmission> {
		const now = Date.now();
		const admission = this.#book.admit(ask, now);
		if (admission.kind === "reserved") {
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
			if (!this.#alarmSet) {
				this.#alarmSet = true;
				await this.ctx.storage.setAlarm(now + RESERVATION_TTL_MS);
			}
		}
		return admission;
	}

	/** Ends a reservation with what the provider reported (undefined: charge the estimate). */
	async settle(id: string, usage: SettledUsage | undefined): Promise<void> {
		const settled = this.#book.settle(id, usage?.charge);
		if (settled) this.#record(settled, usage);
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
		const oldest = Math.min(...[...this.#book.reservations].map((r) => r.reservedAtMs));
		this.#alarmSet = Number.isFinite(oldest);
		if (this.#alarmSet) await this.ctx.storage.setAlarm(oldest + RESERVATION_TTL_MS);
	}

	#record({ reservation, charged }: Settled, usage: SettledUsage | undefined): void {
		this.#sql.exec("DELETE FROM reservations WHERE id = ?", reservation.id);
		const input = usage?.inputTokens ?? reservation.promptTokens;
		const output = usage?.outputTokens ?? reservation.estimate.tokens - reservation.promptTokens;
		this.#sql.exec(
			`INSERT INTO usage VALUES (?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT (date, user, model) DO UPDATE SET
			requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,
			cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
			output_tokens = output_tokens + excluded.output_tokens, nano_usd = nano_usd + excluded.nano_usd`,
			reservation.day,
			reservation.user,
			reservation.model,
			input,
			usage?.cachedInputTokens ?? 0,
			output,
			charged.nanoUsd,
		);
	}
}
