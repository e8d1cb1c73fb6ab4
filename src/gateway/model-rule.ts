// Which models a tenant may send: under a cost budget (its own or its end user's), only models with
// a price, since one without cannot be charged. The rule interactive requests meet in budget-gate.
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

/** Why `tenant` may not send `model` for end user `user`, or undefined when it may. */
export function modelRefusal(
	tenant: TenantPolicy,
	prices: Config["prices"],
	model: string,
	user: string | undefined,
): string | undefined {
	const budget = tenant.budget;
	if (!budget || prices[model] || !limitsCost(budget, user)) return undefined;
	return `model "${model}" has no price in TOLLBOOTH_CONFIG.prices, and tenant "${tenant.name}" has a cost budget: it cannot be charged, so it is not sent (ask the operator to add its price)`;
}
