// The Hono app: routes, configuration and auth middleware, and the one error handler.
import { Hono } from "hono/tiny";
import { type Config, loadConfig } from "../config.ts";
import { type LogEvent, type LogFields, log } from "../log.ts";
import { providerFor } from "../providers/index.ts";
import { AnalyticsEngineSink } from "../usage/record.ts";
import { admin } from "./admin.ts";
import { gatewayKeyOf } from "./auth.ts";
import { openaiBatches } from "./batches.ts";
import { setBudgetHeaders } from "./budget-gate.ts";
import type { GatewayEnv } from "./env.ts";
import { errorResponse, GatewayError } from "./errors.ts";
import { anthropicBatches } from "./message-batches.ts";
import { proxy } from "./proxy.ts";
import { answerWhileDiscarding } from "./request-body.ts";
import { resolveRoute } from "./route.ts";
import { tenantForKey } from "./tenant-keys.ts";
import { upstreamUrl } from "./upstream.ts";
import { UsageRecording } from "./usage-recording.ts";

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
		const usage = c.get("usage");
		const { record } = usage;
		usage.end(
			known.reason === "cancelled"
				? "cancelled"
				: known.status >= 502
					? "upstream_failed"
					: "rejected",
			known.reason,
		);
		c.set("failure", failureLog(c.get("config"), c.get("route")?.rest, record.pool, known));
		const headers = new Headers();
		if (record.pool) headers.set("x-tollbooth-pool", record.pool);
		headers.set("x-tollbooth-retries", String(Math.max(0, record.attempts - 1)));
		const response = errorResponse(provider, known, headers);
		return known.reason === "body_too_large"
			? answerWhileDiscarding(response, c.req.raw)
			: response;
	});

	app.use("*", async function recordUsage(c, next) {
		const usage = new UsageRecording(new AnalyticsEngineSink(c.env.USAGE));
		c.set("usage", usage);
		c.set("upstreamFetch", upstreamFetch);
		await next();
		const { record } = usage;
		if (c.res.status < 200 || c.res.status > 299) {
			const failure = c.get("failure") ?? { event: "answer", fields: { cause: record.cause } };
			log(failure.event, {
				pool: record.pool,
				tenant: record.tenant,
				status: c.res.status,
				...failure.fields,
			});
		}
		usage.write(c.res.status, (promise) => c.executionCtx.waitUntil(promise));
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
		c.get("usage").record.pool = pool.name;
		c.set("provider", providerFor(pool.provider));
		const key = gatewayKeyOf(c.req.raw.headers);
		if (!key) {
			throw new GatewayError(
				401,
				"No gateway key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
				"no_key",
			);
		}
		const tenant = await tenantForKey(config, c.env.REGISTRY, key);
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
		c.get("usage").record.tenant = tenant.name;
		c.set("route", resolveRoute(c.req.raw, pool, c.get("provider")));
		await next();
		setBudgetHeaders(c);
	});

	// Batches are tollbooth's own, served before the proxy so they are never passed through.
	app.route("/:pool/v1", openaiBatches);
	app.route("/:pool/v1", anthropicBatches);
	app.all("/:pool/v1/*", proxy);

	return app;
}

/**
 * The log line for an error answer: a configuration error, a provider that could not be reached
 * (named by host and path), or any other refusal with tollbooth's own message.
 */
function failureLog(
	config: Config | undefined,
	rest: string | undefined,
	poolName: string,
	error: GatewayError,
): { event: LogEvent; fields: LogFields } {
	const fields: LogFields = { cause: error.reason, message: error.message };
	if (error.reason === "bad_config") return { event: "config_error", fields };
	if (error.reason !== "connection_failed") return { event: "answer", fields };
	const pool = config?.pools.find((candidate) => candidate.name === poolName);
	if (pool && rest !== undefined) {
		const url = upstreamUrl(pool.baseUrl, rest, "");
		fields.upstream = `${url.host}${url.pathname}`;
	}
	return { event: "unreachable", fields };
}
