// The Hono app: routes, configuration and auth middleware, and the one error handler.
import { Hono } from "hono";
import type { Config, PoolConfig, TenantConfig } from "../config.ts";
import { loadConfig } from "../config.ts";
import { providerFor } from "../providers/index.ts";
import type { Provider } from "../providers/types.ts";
import { AnalyticsEngineSink, type UsageRecord, type UsageSink } from "../usage/record.ts";
import { admin } from "./admin.ts";
import { findTenant, gatewayKeyOf } from "./auth.ts";
import { errorResponse, GatewayError } from "./errors.ts";
import { proxy } from "./proxy.ts";
import { answerWhileDiscarding } from "./request-body.ts";
import { type Route, resolveRoute } from "./route.ts";

export interface GatewayVariables {
	config: Config;
	pool: PoolConfig;
	provider: Provider;
	tenant: TenantConfig;
	/** The canonical route after /v1, which is both metered and sent. */
	route: Route;
	usage: UsageSink;
	/** This request's usage record, filled in as it goes and written once at its end. */
	record: UsageRecord & { deferred: boolean };
}

export type GatewayEnv = { Bindings: Env; Variables: GatewayVariables };

const fallbackProvider = providerFor("openai");

export function createApp(
	usageSinkFor: (env: Env) => UsageSink = (env) => new AnalyticsEngineSink(env.USAGE),
) {
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
		const headers = new Headers();
		if (record.pool) headers.set("x-tollbooth-pool", record.pool);
		headers.set("x-tollbooth-retries", String(Math.max(0, record.attempts - 1)));
		const response = errorResponse(provider, known, headers);
		return known.reason === "body_too_large"
			? answerWhileDiscarding(response, c.req.raw)
			: response;
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
			deferred: false,
		};
		const usage = usageSinkFor(c.env);
		c.set("record", record);
		c.set("usage", usage);
		await next();
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
		c.set("route", resolveRoute(c.req.raw, pool, c.var.provider));
		await next();
	});

	app.all("/:pool/v1/*", proxy);

	return app;
}
