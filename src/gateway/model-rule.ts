// Which models a tenant may send: those its policy lists (`models`, when set), and under a cost
// budget (its own or its end user's) only models with a price, since one without cannot be
// charged. Interactive requests meet the rule in budget-gate, batch lines at validation.
import type { Budget, Config, TenantPolicy } from "../config.ts";

function hasCostLimit(limits: Budget["perUser"] | undefined): boolean {
	return limits?.costPerDayUsd !== undefined || limits?.costPerMonthUsd !== undefined;
}

/** End user `user`'s own limits under `budget`: its override, else the per-user default. */
export function endUserLimits(budget: Budget, user: string | undefined): Budget["perUser"] {
	return user === undefined ? undefined : (budget.users[user] ?? budget.perUser);
}

/** Whether `budget` limits cost, for the tenant or for end user `user`. */
export function limitsCost(budget: Budget, user: string | undefined): boolean {
	return hasCostLimit(budget) || hasCostLimit(endUserLimits(budget, user));
}

export interface ModelRefusal {
	/** 403 model_not_allowed: not in the tenant's `models`; 400 model_not_priced: no price. */
	code: "model_not_allowed" | "model_not_priced";
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
			message: `tenant "${tenant.name}" may not use model "${model}" (its models: ${tenant.models.join(", ")})`,
		};
	}
	if (!budget || prices[model] || !limitsCost(budget, user)) return undefined;
	return {
		code: "model_not_priced",
		message: `model "${model}" has no price in TOLLBOOTH_CONFIG.prices, and tenant "${tenant.name}" has a cost budget: it cannot be charged, so it is not sent (ask the operator to add its price)`,
	};
}
