// The budget step of the request path: before the Pool, reserve the request's estimate in its
// tenant's budget authority (downgrading the model past the threshold, refusing past the limit);
// once the request has ended, settle it with what the provider reported.
import type { Context } from "hono";
import type { Price } from "../config.ts";
import {
	type BudgetGrant,
	BudgetWallet,
	budgetWindows,
	type Charge,
	chargeOf,
	estimatedCharge,
	type GrantReturn,
	RESERVATION_TTL_MS,
	type Remaining,
	type SettledUsage,
	type SpendEntry,
	type WalletSpend,
} from "../durable/budget.ts";
import { isRecord } from "../providers/estimate.ts";
import type { Usage } from "../providers/types.ts";
import type { UsageRecord } from "../usage/record.ts";
import type { Cost } from "./caller-request.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";
import { budgetAsk, modelRefusal } from "./model-rule.ts";

/** What a request holds in its tenant's budget, and what the answer tells the caller. */
export interface BudgetTicket {
	tenant: string;
	/** Held in the authority for this request alone... */
	reservationId?: string;
	/** ...or spent from this isolate's allowance. */
	spend?: WalletSpend;
	model?: string;
	promptTokens?: number;
	downgradedFrom?: string;
	remaining: Remaining;
}

/**
 * Allowances: an admission far from every threshold also reserves what this isolate expects to
 * spend in ALLOWANCE_SPEND_MS (its recent requests, at least ALLOWANCE_LEAST_REQUESTS of them), to
 * spend without a round trip and then give back.
 */
const ALLOWANCE_LEAST_REQUESTS = 16;
const ALLOWANCE_SPEND_MS = 2_000;

/** This isolate's allowances, by tenant and end user. */
const wallet = new BudgetWallet(ALLOWANCE_SPEND_MS, ALLOWANCE_LEAST_REQUESTS);
/** What the authority said was left outside each grant when it granted it. */
const remainingAtGrant = new Map<string, Remaining>();

const MAX_USER_LENGTH = 256;

/**
 * The end user a request is for: the `x-tollbooth-user` header (set by the caller's own backend),
 * else OpenAI's `safety_identifier`, then `user`, else Anthropic's `metadata.user_id`.
 */
export function endUserOf(headers: Headers, json: unknown): string | undefined {
	const candidates: unknown[] = [headers.get("x-tollbooth-user")];
	if (isRecord(json)) {
		candidates.push(json.safety_identifier, json.user);
		if (isRecord(json.metadata)) candidates.push(json.metadata.user_id);
	}
	for (const candidate of candidates) {
		if (typeof candidate === "string" && candidate.trim() !== "") {
			return candidate.trim().slice(0, MAX_USER_LENGTH);
		}
	}
	return undefined;
}

/**
 * Reserves the request's estimate in its tenant's budget, or refuses it (429 past the limit, 400
 * for a model without a price under a cost budget). Returns the cost to send: its model rewritten
 * when the budget downgraded it. A tenant without a budget passes untouched.
 */
export async function admitBudget(c: Context<GatewayEnv>, cost: Cost): Promise<Cost> {
	const tenant = c.get("tenant");
	const config = c.get("config");
	const provider = c.get("provider");
	const budget = tenant.budget;
	if (cost.model === "") return cost;
	await settleBudget(c, { kind: "nothing_sent" }); // a fallback pool's second try reserves anew
	const user = endUserOf(c.req.raw.headers, cost.json);
	const refusal = modelRefusal(tenant, config.prices, cost.model, user);
	if (refusal) throw new GatewayError(refusal.status, `The ${refusal.message}.`, refusal.code);
	if (!budget) {
		recordOnly(c, cost, user);
		return cost;
	}
	const id = crypto.randomUUID();
	const ask = budgetAsk(id, budget, config.prices, cost, user);
	const requested = ask.requested;
	const walletKey = `${tenant.name}\u0000${user ?? ""}`;
	const nowMs = Date.now();
	const spend = wallet.spend(walletKey, requested.estimate, nowMs);
	if (spend) {
		const outside = remainingAtGrant.get(spend.grantId) ?? {};
		c.set("budget", {
			tenant: tenant.name,
			spend,
			model: cost.model,
			promptTokens: cost.promptTokens,
			remaining: {
				...(outside.tokens !== undefined && { tokens: outside.tokens + spend.left.tokens }),
				...(outside.nanoUsd !== undefined && { nanoUsd: outside.nanoUsd + spend.left.nanoUsd }),
				...(outside.resetAtMs !== undefined && { resetAtMs: outside.resetAtMs }),
			},
		});
		c.get("usage").whenComplete((record, reported) =>
			settleBudget(c, settlementOf(record, reported)),
		);
		return cost;
	}
	const wanted = wallet.want(walletKey, requested.estimate, nowMs);
	const want = wanted && {
		id: `${id}/grant`,
		amount: wanted,
		spendForMs: ALLOWANCE_SPEND_MS,
		reclaimAfterMs: RESERVATION_TTL_MS,
	};
	const asked = c.env.BUDGET.getByName(tenant.name).admit(ask, want);
	let admission: Awaited<typeof asked>;
	try {
		admission = await asked;
	} finally {
		if (want) wallet.answered(walletKey);
	}
	if (admission.kind === "reserved" && admission.grant) {
		holdGrant(c, walletKey, admission.grant, admission.remaining, nowMs);
	}
	if (admission.kind === "exhausted") {
		c.set("budget", { tenant: tenant.name, remaining: admission.remaining });
		const resetAt = new Date(admission.resetAtMs).toISOString();
		const why = admission.held
			? `the rest of its ${admission.budget} is held by requests in flight; retry in a second (it resets at ${resetAt})`
			: `tenant "${tenant.name}" has used its ${admission.budget}; it resets at ${resetAt}`;
		throw new GatewayError(
			429,
			`Budget exhausted: ${why}. Nothing was sent to the provider.`,
			"budget_exhausted",
			{
				retryAfterMs: admission.retryAfterMs,
				// The SDKs' own word for a spend limit: OpenAI's insufficient_quota (Anthropic: rate_limit_error).
				...(provider.kind !== "anthropic" && {
					details: { type: "insufficient_quota", code: "insufficient_quota" },
				}),
			},
		);
	}
	const ticket: BudgetTicket = {
		tenant: tenant.name,
		reservationId: id,
		model: admission.model,
		promptTokens: cost.promptTokens,
		remaining: admission.remaining,
	};
	c.set("budget", ticket);
	const usage = c.get("usage");
	usage.whenComplete((record, reported) => settleBudget(c, settlementOf(record, reported)));
	if (!admission.downgraded) return cost;
	ticket.downgradedFrom = cost.model;
	usage.record.model = admission.model;
	const json = isRecord(cost.json) ? { ...cost.json, model: admission.model } : cost.json;
	return { ...cost, model: admission.model, json };
}

/** A tenant without a budget: nothing to reserve, but its usage goes to the exact ledger too. */
function recordOnly(c: Context<GatewayEnv>, cost: Cost, user: string | undefined): void {
	const price = c.get("config").prices[cost.model];
	c.set("budget", {
		tenant: c.get("tenant").name,
		model: cost.model,
		promptTokens: cost.promptTokens,
		spend: { ...unbudgetedSpend(cost, price, user), left: { tokens: 0, nanoUsd: 0 } },
		remaining: {},
	});
	c.get("usage").whenComplete((record, reported) =>
		settleBudget(c, settlementOf(record, reported)),
	);
}

/**
 * A request (or batch line) of a tenant without a budget, as the ledger records it: no grant,
 * charged to today's UTC windows at its estimate until its usage is known.
 */
export function unbudgetedSpend(
	cost: Cost,
	price: Price | undefined,
	user: string | undefined,
): Pick<SpendEntry, "grantId" | "scope" | "estimate"> {
	const { day, month } = budgetWindows(Date.now(), "UTC");
	return {
		grantId: "",
		scope: { user: user ?? "", day, month },
		estimate: estimatedCharge(cost.promptTokens, cost.tokens - cost.promptTokens, price),
	};
}

/** How a request's send ended, for its charge. */
export type Settlement =
	| { kind: "reported"; usage: Usage }
	/** Never sent, or answered with an error: the provider did no billable work. */
	| { kind: "nothing_sent" }
	/** The provider may have worked and reported nothing: the estimate stands. */
	| { kind: "unknown" };

/** What a finished request is charged: what was reported, nothing when no work was done, or the estimate. */
function settlementOf(record: UsageRecord, reported: Usage | undefined): Settlement {
	if (reported) return { kind: "reported", usage: reported };
	// Never sent, or answered with an error (the provider bills no work for those).
	if (
		record.attempts === 0 ||
		record.outcome === "provider_error" ||
		record.outcome === "rejected"
	) {
		return { kind: "nothing_sent" };
	}
	return { kind: "unknown" };
}

/** The usage a settlement charges at `price`: none when no work was done; undefined when unknown. */
export function settledUsage(
	settlement: Settlement | { kind: "not_run" },
	price: Price | undefined,
): SettledUsage | undefined {
	if (settlement.kind === "unknown") return undefined;
	if (settlement.kind !== "reported") {
		const none: Charge = { tokens: 0, nanoUsd: 0 };
		return { charge: none, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };
	}
	const reported = settlement.usage;
	return {
		charge: chargeOf(reported, price),
		inputTokens: reported.inputTokens,
		cachedInputTokens: reported.cachedInputTokens ?? 0,
		outputTokens: reported.outputTokens,
	};
}

/** Holds a grant in this isolate, and gives back its rest when its spend window closes. */
function holdGrant(
	c: Context<GatewayEnv>,
	walletKey: string,
	grant: BudgetGrant,
	remaining: Remaining,
	nowMs: number,
): void {
	wallet.add(walletKey, grant, nowMs + ALLOWANCE_SPEND_MS);
	remainingAtGrant.set(grant.id, remaining);
	const tenant = c.get("tenant").name;
	const budget = c.env.BUDGET;
	c.executionCtx.waitUntil(
		new Promise((resolve) => setTimeout(resolve, ALLOWANCE_SPEND_MS)).then(async () => {
			const back = wallet.close(grant.id);
			if (back?.final) remainingAtGrant.delete(grant.id);
			if (back) await budget.getByName(tenant).returnGrant(back.grantId, back.left, back.final);
		}),
	);
}

async function settleBudget(c: Context<GatewayEnv>, settlement: Settlement): Promise<void> {
	const ticket = c.get("budget");
	if (!ticket || ticket.model === undefined) return;
	const { reservationId, spend } = ticket;
	ticket.reservationId = undefined;
	ticket.spend = undefined;
	const usage = settledUsage(settlement, c.get("config").prices[ticket.model]);
	const authority = c.env.BUDGET.getByName(ticket.tenant);
	if (reservationId) await authority.settle(reservationId, usage);
	if (!spend) return;
	queueSpend(c, ticket.tenant, {
		entry: {
			grantId: spend.grantId,
			scope: spend.scope,
			model: ticket.model,
			promptTokens: ticket.promptTokens ?? 0,
			estimate: spend.estimate,
		},
		usage,
	});
}

type SpendSettlement = { entry: SpendEntry; usage: SettledUsage | undefined };

/** Spends of each tenant's allowances waiting to be settled, in one call per SETTLE_BATCH_MS. */
const pendingSpends = new Map<string, SpendSettlement[]>();
const SETTLE_BATCH_MS = 250;

/** Queues a spend's settlement; the request that starts a batch sends it (within its waitUntil). */
function queueSpend(c: Context<GatewayEnv>, tenant: string, settlement: SpendSettlement): void {
	const batch = pendingSpends.get(tenant);
	if (batch) {
		batch.push(settlement);
		return;
	}
	pendingSpends.set(tenant, [settlement]);
	const budget = c.env.BUDGET;
	c.executionCtx.waitUntil(
		new Promise((resolve) => setTimeout(resolve, SETTLE_BATCH_MS)).then(async () => {
			const spends = pendingSpends.get(tenant) ?? [];
			pendingSpends.delete(tenant);
			const returns: GrantReturn[] = [];
			for (const { entry } of spends) {
				const back = wallet.ended(entry.grantId);
				if (back) {
					remainingAtGrant.delete(back.grantId);
					returns.push(back);
				}
			}
			await budget.getByName(tenant).settleSpends(spends, returns);
		}),
	);
}

/** x-tollbooth-budget-remaining-* and the downgrade header, on every answer of a budgeted tenant. */
export function setBudgetHeaders(c: Context<GatewayEnv>): void {
	const ticket = c.get("budget");
	if (!ticket) return;
	const headers = c.res.headers;
	const { tokens, nanoUsd, resetAtMs } = ticket.remaining;
	if (tokens !== undefined) headers.set("x-tollbooth-budget-remaining-tokens", String(tokens));
	if (nanoUsd !== undefined) {
		headers.set("x-tollbooth-budget-remaining-usd", (nanoUsd / 1e9).toFixed(6));
	}
	if (resetAtMs !== undefined) {
		headers.set("x-tollbooth-budget-reset", new Date(resetAtMs).toISOString());
	}
	if (ticket.downgradedFrom) {
		headers.set("x-tollbooth-model-downgraded-from", ticket.downgradedFrom);
	}
}
