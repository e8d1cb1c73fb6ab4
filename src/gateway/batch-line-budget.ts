// A batch line's charge to its tenant, as any request's (budget-gate.ts): its estimate reserved in
// the tenant's budget object when it runs, settled with the provider's usage when it ends, given
// back when nothing was sent. A tenant without a budget has its lines' usage recorded only.
import type { Config, TenantPolicy } from "../config.ts";
import type { BudgetAdmission, SettledUsage, SpendEntry } from "../durable/budget.ts";
import { REGISTRY_NAME } from "../durable/registry.ts";
import { type Settlement, settledUsage, unbudgetedSpend } from "./budget-gate.ts";
import type { Cost } from "./caller-request.ts";
import { budgetAsk, modelRefusal } from "./model-rule.ts";

/**
 * How a line's send ended, for its charge: as a request's, or never sent (refused by its pool, its
 * batch stopped): its reservation is given back, and an unbudgeted line is not recorded.
 */
export type LineSettlement = Settlement | { kind: "not_run" };

export type LineCharge =
	| {
			kind: "charged";
			/** The model to send: the line's own, or the one its tenant's budget downgraded it to. */
			model: string;
			downgradedFrom?: string;
			settle(settlement: LineSettlement): Promise<void>;
	  }
	/** Refused: the budget is used up (held: by requests in flight, so it frees within seconds). */
	| { kind: "refused"; status: 400 | 403 | 429; code: string; message: string; held: boolean };

/** How long an isolate trusts a runtime tenant's policy read from the registry. */
const POLICY_CACHE_MS = 4_000;
const policies = new Map<string, { policy: TenantPolicy | undefined; fetchedMs: number }>();

/** The tenant's policy: TOLLBOOTH_CONFIG's first, else the runtime registry's (cached briefly). */
export async function tenantPolicy(
	env: Env,
	config: Config,
	tenant: string,
	nowMs = Date.now(),
): Promise<TenantPolicy | undefined> {
	const configured = config.tenants.find((candidate) => candidate.name === tenant);
	if (configured) return configured;
	const cached = policies.get(tenant);
	if (cached && nowMs - cached.fetchedMs < POLICY_CACHE_MS) return cached.policy;
	const record = await env.REGISTRY.getByName(REGISTRY_NAME).getTenant(tenant);
	policies.set(tenant, { policy: record?.policy, fetchedMs: nowMs });
	return record?.policy;
}

/**
 * One delivery's budget calls for its lines: a budgeted tenant's line reserves and settles on its
 * own (its reservation is exact), an unbudgeted tenant's lines go to the ledger in one call.
 */
export class LineLedger {
	readonly #env: Env;
	readonly #config: Config;
	readonly #tenant: string;
	readonly #policy: TenantPolicy | undefined;
	#spends: { entry: SpendEntry; usage: SettledUsage | undefined }[] = [];

	constructor(env: Env, config: Config, tenant: string, policy: TenantPolicy | undefined) {
		this.#env = env;
		this.#config = config;
		this.#tenant = tenant;
		this.#policy = policy;
	}

	/** Reserves a line's estimate before it asks its pool, or says why it may not run. */
	async charge(cost: Cost, user: string | undefined): Promise<LineCharge> {
		// The model rule as at validation, again at run time: the policy may have changed since.
		const refusal =
			this.#policy && modelRefusal(this.#policy, this.#config.prices, cost.model, user);
		if (refusal) {
			return {
				kind: "refused",
				status: refusal.status,
				code: refusal.code,
				held: false,
				message: `The ${refusal.message}.`,
			};
		}
		const budget = this.#policy?.budget;
		const price = this.#config.prices[cost.model];
		if (!budget) {
			const entry: SpendEntry = {
				...unbudgetedSpend(cost, price, user),
				model: cost.model,
				promptTokens: cost.promptTokens,
			};
			return {
				kind: "charged",
				model: cost.model,
				settle: async (settlement) => {
					if (settlement.kind === "not_run") return; // no request to record
					this.#spends.push({ entry, usage: settledUsage(settlement, price) });
				},
			};
		}
		const id = crypto.randomUUID();
		const authority = this.#env.BUDGET.getByName(this.#tenant);
		const admission: BudgetAdmission = await authority.admit(
			budgetAsk(id, budget, this.#config.prices, cost, user),
		);
		if (admission.kind === "exhausted") {
			const resetAt = new Date(admission.resetAtMs).toISOString();
			return {
				kind: "refused",
				status: 429,
				code: "budget_exhausted",
				held: admission.held,
				message: `Budget exhausted: tenant "${this.#tenant}" has used its ${admission.budget}; it resets at ${resetAt}. This line was not sent to the provider.`,
			};
		}
		const chargedPrice = this.#config.prices[admission.model];
		return {
			kind: "charged",
			model: admission.model,
			...(admission.downgraded && { downgradedFrom: cost.model }),
			settle: (settlement) => authority.settle(id, settledUsage(settlement, chargedPrice)),
		};
	}

	/** Writes the unbudgeted lines' usage to the tenant's ledger, in one call. */
	async flush(): Promise<void> {
		if (this.#spends.length === 0) return;
		const spends = this.#spends;
		this.#spends = [];
		await this.#env.BUDGET.getByName(this.#tenant).settleSpends(spends, []);
	}
}
