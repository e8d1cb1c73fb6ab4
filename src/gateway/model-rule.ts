// Which models a tenant may send: those its policy lists (`models`, when set), and under a cost
// budget (its own or its end user's) only models with a price, since one without cannot be
// charged. Interactive requests meet the rule in budget-gate, batch lines at validation.
import type { Budget, Config, TenantPolicy } from "../config.ts";
import { type BudgetAsk, estimatedCharge } from "../durable/budget.ts";
import type { Cost } from "./caller-request.ts";

function hasCostLimit(limits: Budget["perUser"] | undefined): boolean {
	return limits?.costPerDayUsd !== undefined || limits?.costPerMonthUsd !== undefined;
}

/** End user `user`'s own limits under `budget`: its override, else the per-user default. */
export function endUserLimits(budget: Budget, user: string | undefined): Budget["perUser"] {
	return user === undefined ? undefined : (budget.users[user] ?? budget.perUser);
}

/** Whether `budget` limits cost, for the tenant or for an end user with `userLimits`. */
function limitsCost(budget: Budget, userLimits: Budget["perUser"]): boolean {
	return hasCostLimit(budget) || hasCostLimit(userLimits);
}

/**
 * What a request or a batch line asks of its tenant's budget object: its estimate, the cheaper
 * model its downgrade maps it to (only a priced one under a cost budget), and the limits in force.
 */
export function budgetAsk(
	id: string,
	budget: Budget,
	prices: Config["prices"],
	cost: Cost,
	user: string | undefined,
): BudgetAsk {
	const userLimits = endUserLimits(budget, user);
	const maxOutput = cost.tokens - cost.promptTokens;
	const cheaper = budget.downgrade[cost.model];
	const cheaperPrice = cheaper === undefined ? undefined : prices[cheaper];
	return {
		id,
		...(user !== undefined && { user }),
		requested: {
			model: cost.model,
			promptTokens: cost.promptTokens,
			estimate: estimatedCharge(cost.promptTokens, maxOutput, prices[cost.model]),
		},
		...(cheaper !== undefined &&
			(cheaperPrice || !limitsCost(budget, userLimits)) && {
				downgrade: {
					model: cheaper,
					promptTokens: cost.promptTokens,
					estimate: estimatedCharge(cost.promptTokens, maxOutput, cheaperPrice),
				},
			}),
		policy: {
			tenant: budget,
			...(userLimits && { user: userLimits }),
			downgradeAt: budget.downgradeAt,
			timeZone: budget.timeZone,
		},
	};
}

export interface ModelRefusal {
	/** 403 model_not_allowed: not in the tenant's `models`; 400 model_not_priced: no price. */
	code: "model_not_allowed" | "model_not_priced";
	status: 403 | 400;
	message: string;
}

/** Why `tenant` may not send `model` for end user `user`, or undefined when it may. */
export function modelRefusal(
	tenant: TenantPolicy,
	prices: Config["prices"],
	model: string,
	user: string | undefined,
): ModelRefusal | undefined {
	const budget = tenant.budget;
	const downgradeTargets = Object.values(budget?.downgrade ?? {});
	if (tenant.models && !tenant.models.includes(model) && !downgradeTargets.includes(model)) {
		return {
			code: "model_not_allowed",
			status: 403,
			message: `tenant "${tenant.name}" may not use model "${model}" (its models: ${tenant.models.join(", ")})`,
		};
	}
	if (!budget || prices[model] || !limitsCost(budget, endUserLimits(budget, user)))
		return undefined;
	return {
		code: "model_not_priced",
		status: 400,
		message: `model "${model}" has no price in TOLLBOOTH_CONFIG.prices, and tenant "${tenant.name}" has a cost budget: it cannot be charged, so it is not sent (ask the operator to add its price)`,
	};
}
