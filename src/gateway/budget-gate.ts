// The budget step of the request path: before the Pool, reserve the request's estimate in its
// tenant's budget authority (downgrading the model past the threshold, refusing past the limit);
// once the request has ended, settle it with what the provider reported.
import type { Context } from "hono";
import type { Price } from "../config.ts";
import type { BudgetLimits, Remaining } from "../core/budget.ts";
import { type Charge, chargeOf, estimatedCharge } from "../core/budget-cost.ts";
import type { BudgetAdmission } from "../durable/budget.ts";
import { isRecord } from "../providers/estimate.ts";
import type { Usage } from "../providers/types.ts";
import type { UsageRecord } from "../usage/record.ts";
import type { Cost } from "./caller-request.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError } from "./errors.ts";

/** What a request holds in its tenant's budget, and what the answer tells the caller. */
export interface BudgetTicket {
	tenant: string;
	reservationId?: string;
	model?: string;
	downgradedFrom?: string;
	remaining: Remaining;
}

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

function hasCostLimit(limits: BudgetLimits | undefined): boolean {
	return limits?.costPerDayUsd !== undefined || limits?.costPerMonthUsd !== undefined;
}

/**
 * Reserves the request's estimate in its tenant's budget, or refuses it (429 past the limit, 400
 * for a model without a price under a cost budget). Returns the cost to send: its model rewritten
 * when the budget downgraded it. A tenant without a budget passes untouched.
 */
export async function admitBudget(c: Context<GatewayEnv>, cost: Cost): Promise<Cost> {
	const { tenant, config, provider } = c.var;
	const budget = tenant.budget;
	if (!budget || cost.model === "") return cost;
	await settleBudget(c, { kind: "nothing_sent" }); // a fallback pool's second try reserves anew
	const user = endUserOf(c.req.raw.headers, cost.json);
	const userLimits = user === undefined ? undefined : (budget.users[user] ?? budget.perUser);
	const costLimited = hasCostLimit(budget) || hasCostLimit(userLimits);
	const price = config.prices[cost.model];
	if (costLimited && !price) {
		throw new GatewayError(
			400,
			`Model "${cost.model}" has no price in TOLLBOOTH_CONFIG.prices, and tenant "${tenant.name}" has a cost budget: it cannot be charged, so it is not sent. Ask the operator to add its price.`,
			"model_not_priced",
		);
	}
	const maxOutput = cost.tokens - cost.promptTokens;
	const requested = {
		model: cost.model,
		promptTokens: cost.promptTokens,
		estimate: estimatedCharge(cost.promptTokens, maxOutput, price),
	};
	const cheaper = budget.downgrade[cost.model];
	const cheaperPrice = cheaper === undefined ? undefined : config.prices[cheaper];
	const downgrade =
		cheaper !== undefined && (cheaperPrice || !costLimited)
			? {
					model: cheaper,
					promptTokens: cost.promptTokens,
					estimate: estimatedCharge(cost.promptTokens, maxOutput, cheaperPrice),
				}
			: undefined;
	const id = crypto.randomUUID();
	const admission: BudgetAdmission = await c.env.BUDGET.getByName(tenant.name).admit({
		id,
		...(user !== undefined && { user }),
		requested,
		...(downgrade && { downgrade }),
		policy: {
			tenant: budget,
			...(userLimits && { user: userLimits }),
			downgradeAt: budget.downgradeAt,
			timeZone: budget.timeZone,
		},
	});
	if (admission.kind === "exhausted") {
		c.set("budget", { tenant: tenant.name, remaining: admission.remaining });
		const resetAt = new Date(admission.resetAtMs).toISOString();
		throw new GatewayError(
			429,
			`Budget exhausted: tenant "${tenant.name}" has used its ${admission.budget}; it resets at ${resetAt}. Nothing was sent to the provider.`,
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
		remaining: admission.remaining,
	};
	c.set("budget", ticket);
	const usage = c.var.usage;
	usage.whenComplete((record, reported) => settleBudget(c, settlementOf(record, reported)));
	if (!admission.downgraded) return cost;
	ticket.downgradedFrom = cost.model;
	usage.record.model = admission.model;
	const json = isRecord(cost.json) ? { ...cost.json, model: admission.model } : cost.json;
	return { ...cost, model: admission.model, json };
}

type Settlement =
	| { kind: "reported"; usage: Usage }
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

async function settleBudget(c: Context<GatewayEnv>, settlement: Settlement): Promise<void> {
	const ticket = c.var.budget;
	if (!ticket?.reservationId || ticket.model === undefined) return;
	const id = ticket.reservationId;
	ticket.reservationId = undefined;
	const price: Price | undefined = c.var.config.prices[ticket.model];
	let usage: Parameters<ReturnType<typeof c.env.BUDGET.getByName>["settle"]>[1];
	if (settlement.kind === "reported") {
		const reported = settlement.usage;
		usage = {
			charge: chargeOf(reported, price),
			inputTokens: reported.inputTokens,
			cachedInputTokens: reported.cachedInputTokens ?? 0,
			outputTokens: reported.outputTokens,
		};
	} else if (settlement.kind === "nothing_sent") {
		const none: Charge = { tokens: 0, nanoUsd: 0 };
		usage = { charge: none, inputTokens: 0, cachedInputTokens: 0, outputTokens: 0 };
	}
	await c.env.BUDGET.getByName(ticket.tenant).settle(id, usage);
}

/** x-tollbooth-budget-remaining-* and the downgrade header, on every answer of a budgeted tenant. */
export function setBudgetHeaders(c: Context<GatewayEnv>): void {
	const ticket = c.var.budget;
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
