// The tenants a Pool schedules: TOLLBOOTH_CONFIG's, and the runtime tenants the admin API keeps in
// the registry. A Pool learns a runtime tenant's weight and own limits before it admits its first
// request, and picks up a change within REFRESH_MS of the tenant's next request.
import { type TenantConfig, type TenantPolicy, tenantPolicies } from "../config.ts";
import type { PoolStateOptions } from "../core/pool-state.ts";
import { log } from "../log.ts";
import { REGISTRY_NAME, type TenantRegistry } from "./registry.ts";

/** How stale a runtime tenant's policy may be: the gateway's key cache forgets as fast. */
const REFRESH_MS = 5_000;
/** A name the registry did not have is asked about again at most this often. */
const UNKNOWN_RETRY_MS = 1_000;

type SchedulerTenants = PoolStateOptions["scheduler"]["tenants"];

export class PoolTenants {
	readonly #pool: string;
	readonly #registry: () => DurableObjectStub<TenantRegistry>;
	readonly #apply: (tenants: SchedulerTenants) => void;
	#configured: TenantConfig[] = [];
	#configuredNames = new Set<string>();
	#runtime = new Map<string, TenantPolicy>();
	#fetchedMs = Number.NEGATIVE_INFINITY;
	#fetching: Promise<void> | undefined;

	constructor(
		pool: string,
		registry: DurableObjectNamespace<TenantRegistry>,
		apply: (tenants: SchedulerTenants) => void,
	) {
		this.#pool = pool;
		this.#registry = () => registry.getByName(REGISTRY_NAME);
		this.#apply = apply;
	}

	/** TOLLBOOTH_CONFIG's tenants, at start and whenever the configuration changes. */
	setConfigured(tenants: TenantConfig[]): void {
		this.#configured = tenants;
		this.#configuredNames = new Set(tenants.map((tenant) => tenant.name));
		this.#applyAll();
	}

	/**
	 * Undefined when `tenant`'s policy is known (the common case: no wait), else a promise that
	 * settles once the registry was asked. A known runtime tenant's policy is refreshed behind.
	 */
	ready(tenant: string, nowMs: number): Promise<void> | undefined {
		if (this.#configuredNames.has(tenant)) return undefined;
		const ageMs = nowMs - this.#fetchedMs;
		if (this.#runtime.has(tenant)) {
			if (ageMs > REFRESH_MS) void this.#refresh(nowMs);
			return undefined;
		}
		// Not in the registry a moment ago: weight 1 and no limits of its own, as any unlisted name.
		if (ageMs < UNKNOWN_RETRY_MS) return undefined;
		return this.#refresh(nowMs);
	}

	#refresh(nowMs: number): Promise<void> {
		this.#fetching ??= this.#registry()
			.listTenants()
			.then(
				(records) => {
					this.#runtime = new Map(records.map((record) => [record.policy.name, record.policy]));
					this.#applyAll();
				},
				// Unreachable: keep what is known, ask again after UNKNOWN_RETRY_MS.
				() =>
					log("registry", {
						pool: this.#pool,
						cause: "registry_unreachable",
						message: "Runtime tenants keep their last known weights and limits.",
					}),
			)
			.finally(() => {
				this.#fetchedMs = nowMs;
				this.#fetching = undefined;
			});
		return this.#fetching;
	}

	/** The configured tenants last: one wins a name clash with a runtime tenant, as everywhere. */
	#applyAll(): void {
		this.#apply(tenantPolicies([...this.#runtime.values(), ...this.#configured]));
	}
}
