// The gateway's Hono environment: bindings and the per-request variables its middleware sets.
import type { Config, PoolConfig, TenantPolicy } from "../config.ts";
import type { LogEvent, LogFields } from "../log.ts";
import type { Provider } from "../providers/types.ts";
import type { Route } from "./route.ts";
import type { UsageRecording } from "./usage-recording.ts";

export interface GatewayVariables {
	config: Config;
	pool: PoolConfig;
	provider: Provider;
	tenant: TenantPolicy;
	/** The canonical route after /v1, which is both metered and sent. */
	route: Route;
	/** This request's usage record, filled in as it goes and written once at its end. */
	usage: UsageRecording;
	/** How the provider is called: fetch, or in local dev one that also reaches the built-in mock. */
	upstreamFetch: typeof fetch;
	/** The request's budget reservation, when its tenant has a budget (budget-gate.ts). */
	budget?: import("./budget-gate.ts").BudgetTicket;
	/** The log line an error answer writes, set by the error handler. */
	failure?: { event: LogEvent; fields: LogFields };
}

export type GatewayEnv = { Bindings: Env; Variables: GatewayVariables };
