// The Hono app: routes, configuration and auth middleware, and the one error handler.
import { Hono } from "hono";
import type { Config, PoolConfig, TenantConfig } from "../config.ts";
import { loadConfig } from "../config.ts";
import { type LogEvent, type LogFields, log } from "../log.ts";
import { providerFor } from "../providers/index.ts";
import type { Provider } from "../providers/types.ts";
import { AnalyticsEngineSink, type UsageRecord, type UsageSink } from "../usage/record.ts";
import { admin } from "./admin.ts";
import { findTenant, gatewayKeyOf } from "./auth.ts";
import { errorResponse, GatewayError } from "./errors.ts";
import { proxy } from "./proxy.ts";
import { upstreamUrl } from "./upstream.ts";

export interface GatewayVariables {
	config: Config;
	pool: PoolConfig;
	provider: Provider;
	tenant: TenantConfig;
	usage: UsageSink;
	/** This request's usage record, filled in as it goes and written once at its end. */
	record: UsageRecord & { deferred: boolean };
	/** How the provider is called: fetch, or in local dev one that also reaches the built-in mock. */
	upstreamFetch: typeof fetch;
	/** The log line an error answer writes, set by the error handler. */
	failure?: { event: LogEvent; fields: LogFields };
}

export type GatewayEnv = { Bindings: Env; Variables: GatewayVariables };

const fallbackProvider = providerFor("openai");

export interface AppOptions {
	/** Calls the provider; default: the global fetch, looked up on each call. */
	upstreamFetch?: typeof fetch;
}

export function createApp(options: AppOptions = {}) {
	const upstreamFetch: typeof fetch =
		options.upstreamFetch ?? ((input, init) => fetch(input, init));
	const app = new Hono<GatewayEnv>();

	app.onError((error, c) => {
		const provider = c.get("provider") ?? fallbackProvider;
		const known =
			error instanceof GatewayError
				? error
				: new GatewayError(500, "tollbooth failed unexpectedly; see the Worker logs.", "internal");
		if (known !== error) console.error("tollbooth: unexpected error", error);
		const record = c.get("record");
		record.outcome =
			known.reason === "cancelled"
				? "cancelled"
				: known.status >= 502
					? "upstream_failed"
					: "rejected";
		record.cause = known.reason;
		c.set("failure", failureLog(c.var.config, record.pool, c.req.path, known));
		const headers = new Headers();
		if (record.pool) headers.set("x-tollbooth-pool", record.pool);
		headers.set("x-tollbooth-retries", String(Math.max(0, record.attempts - 1)));
		return errorResponse(provider, known, headers);
	});

	app.use("*", async function recordUsage(c, next) {
		const record: GatewayVariables["record"] = {
			tenant: "",
			pool: "",
			model: "",
			priority: "",
			outcome: "rejected",
			cause: "",
			status: 0,
			promptTokens: 0,
			completionTokens: 0,
			queueMs: 0,
			upstreamMs: 0,
			attempts: 0,
			retriesAfterRateLimit: 0,
			retriesAfterFailure: 0,
			cachedInputTokens: 0,
			reasoningTokens: 0,
			deferred: false,
		};
		const usage = new AnalyticsEngineSink(c.env.USAGE);
		c.set("record", record);
		c.set("usage", usage);
		c.set("upstreamFetch", upstreamFetch);
		await next();
		if (c.res.status < 200 || c.res.status > 299) {
			const failure = c.get("failure") ?? { event: "answer", fields: { cause: record.cause } };
			log(failure.event, {
				pool: record.pool,
				tenant: record.tenant,
				status: c.res.status,
				...failure.fields,
			});
		}
		if (!record.deferred) {
			record.status = c.res.status;
			usage.write(record);
		}
	});

	app.notFound(() => {
		throw new GatewayError(
			404,
			"Unknown route. Call /<pool>/v1/... with the name of a configured pool, e.g. /openai/v1/chat/completions.",
			"unknown_route",
		);
	});

	app.get("/", (c) => c.json({ service: "tollbooth", routes: ["/<pool>/v1/*", "/admin/pools"] }));
	app.route("/admin", admin);

	app.use("/:pool/v1/*", async function resolvePoolAndTenant(c, next) {
		const loaded = loadConfig(c.env.TOLLBOOTH_CONFIG);
		if (!loaded.ok) throw new GatewayError(500, loaded.message, "bad_config");
		const config = loaded.config;
		const pool = config.pools.find((candidate) => candidate.name === c.req.param("pool"));
		if (!pool) {
			const names = config.pools.map((candidate) => candidate.name).join(", ");
			throw new GatewayError(
				404,
				`No pool named "${c.req.param("pool")}". Configured pools: ${names}.`,
				"unknown_pool",
			);
		}
		c.set("config", config);
		c.set("pool", pool);
		c.get("record").pool = pool.name;
		c.set("provider", providerFor(pool.provider));
		const key = gatewayKeyOf(c.req.raw.headers);
		if (!key) {
			throw new GatewayError(
				401,
				"No gateway key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
				"no_key",
			);
		}
		const tenant = await findTenant(config, key);
		if (!tenant)
			throw new GatewayError(
				401,
				"Unknown gateway key. Ask the operator for a tollbooth key.",
				"unknown_key",
			);
		if (!tenant.pools.includes("*") && !tenant.pools.includes(pool.name)) {
			throw new GatewayError(
				403,
				`Tenant "${tenant.name}" may not use pool "${pool.name}".`,
				"pool_forbidden",
			);
		}
		c.set("tenant", tenant);
		c.get("record").tenant = tenant.name;
		await next();
	});

	app.all("/:pool/v1/*", proxy);

	return app;
}

/**
 * The log line for an error answer: a configuration error, a provider that could not be reached
 * (named by host and path), or any other refusal with tollbooth's own message.
 */
function failureLog(
	config: Config | undefined,
	poolName: string,
	path: string,
	error: GatewayError,
): { event: LogEvent; fields: LogFields } {
	const fields: LogFields = { cause: error.reason, message: error.message };
	if (error.reason === "bad_config") return { event: "config_error", fields };
	if (error.reason !== "connection_failed") return { event: "answer", fields };
	const pool = config?.pools.find((candidate) => candidate.name === poolName);
	if (pool) {
		const rest = path.replace(/^\/[^/]+\/v1/, "");
		const url = upstreamUrl(pool.baseUrl, rest, "");
		fields.upstream = `${url.host}${url.pathname}`;
	}
	return { event: "unreachable", fields };
}
