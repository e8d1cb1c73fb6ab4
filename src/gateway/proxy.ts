// The request path for /<pool>/v1/*: estimate the cost, wait for the Pool's admission, forward
// with the pool's key, absorb provider 429s through the Pool, relay the answer, release the lease.
import type { Context } from "hono";
import { PRIORITIES, type Priority } from "../core/priority.ts";
import type { AcquireRequest, AcquireResult } from "../durable/pool.ts";
import type { Usage } from "../providers/types.ts";
import type { GatewayEnv } from "./app.ts";
import { GatewayError, retryAfterSeconds } from "./errors.ts";
import { PoolClient } from "./pool-client.ts";
import { setRateLimitHeaders } from "./rate-limit-headers.ts";
import { readBody } from "./request-body.ts";
import {
	callerResponseHeaders,
	relayStream,
	UpstreamDeadline,
	upstreamRequestHeaders,
	upstreamUrl,
} from "./upstream.ts";

/** Endpoints that run a model: a request without one is a client error, not a pass-through. */
const MODEL_ENDPOINTS = new Set([
	"/chat/completions",
	"/completions",
	"/embeddings",
	"/responses",
	"/messages",
]);

/** Wait before resending after a provider 429 that named no retry-after (doubles per attempt). */
const DEFAULT_RETRY_AFTER_MS = 1000;

export async function proxy(c: Context<GatewayEnv>): Promise<Response> {
	const { pool, provider, tenant, config, record } = c.var;
	const request = c.req.raw;
	const rest = c.req.path.slice(`/${pool.name}/v1`.length);
	const url = upstreamUrl(pool.baseUrl, rest, new URL(request.url).search);
	const priority = effectivePriority(
		request.headers.get("x-priority"),
		tenant.defaultPriority,
		tenant.maxPriority,
	);
	const maxWaitMs = requestedMaxWaitMs(
		request.headers.get("x-max-wait-ms"),
		pool.maxWaitMs[priority.effective],
	);
	record.priority = priority.effective;

	const raw = await readBody(request, config.maxBodyBytes);
	const cost = estimateCost(c, rest, raw);
	record.model = cost.model;

	const apiKey = (c.env as unknown as Record<string, unknown>)[pool.apiKeySecret];
	if (typeof apiKey !== "string" || apiKey === "") {
		throw new GatewayError(
			500,
			`Pool "${pool.name}" has no provider key: set the secret with 'wrangler secret put ${pool.apiKeySecret}'.`,
			"no_provider_key",
		);
	}
	const prepared = cost.json === undefined ? undefined : provider.prepareBody(rest, cost.json);
	const upstreamBody = prepared ? JSON.stringify(prepared.body) : raw;
	const upstreamHeaders = upstreamRequestHeaders(request.headers, provider, apiKey);

	const poolClient = new PoolClient(c.env.POOL, pool.name);
	const ask: AcquireRequest = {
		pool: pool.name,
		ticketId: crypto.randomUUID(),
		tenant: tenant.name,
		model: cost.model,
		priority: priority.effective,
		tokens: cost.tokens,
		maxWaitMs,
	};
	let admission = await poolClient.acquire(ask, request.signal);

	for (;;) {
		record.queueMs += admission.queueMs;
		const lease = admitted(admission);
		if (request.signal.aborted) {
			c.executionCtx.waitUntil(poolClient.release(lease.ticketId, 0));
			throw new GatewayError(499, "The caller closed the request.", "cancelled");
		}
		record.attempts += 1;
		const startedMs = Date.now();
		const deadline = new UpstreamDeadline(request.signal);
		deadline.arm("first byte", pool.firstByteTimeoutMs);
		let upstream: Response;
		try {
			upstream = await fetch(url, {
				method: request.method,
				headers: upstreamHeaders,
				body: upstreamBody,
				signal: deadline.signal,
			});
		} catch (error) {
			// A timed-out request may still be running at the provider and count against the key.
			const failure = deadline.failure(error);
			c.executionCtx.waitUntil(
				poolClient.release(lease.ticketId, failure.reason === "timeout" ? undefined : 0),
			);
			throw failure;
		} finally {
			deadline.disarm();
			record.upstreamMs += Date.now() - startedMs;
		}

		if (upstream.status === 429) {
			const retryAfterMs =
				provider.parseRateLimitHeaders(upstream.headers, Date.now()).retryAfterMs ??
				DEFAULT_RETRY_AFTER_MS * 2 ** (record.attempts - 1);
			await upstream.body?.cancel();
			if (record.attempts >= pool.maxAttempts) {
				c.executionCtx.waitUntil(poolClient.release(lease.ticketId, undefined));
				throw new GatewayError(
					429,
					`The provider kept rate limiting pool "${pool.name}" after ${record.attempts} attempts; retry after ${retryAfterSeconds(retryAfterMs)} s.`,
					"provider_rate_limited",
					{ retryAfterMs },
				);
			}
			const next: AcquireRequest = {
				...ask,
				retry: true,
				ticketId: crypto.randomUUID(),
				maxWaitMs: maxWaitMs + retryAfterMs,
			};
			admission = await poolClient.rateLimited(lease.ticketId, next, retryAfterMs, request.signal);
			continue;
		}

		if (upstream.status === 401 || upstream.status === 403) {
			// The provider refused the pool's own key: its message may quote part of that key.
			await upstream.body?.cancel();
			c.executionCtx.waitUntil(poolClient.release(lease.ticketId, 0));
			throw new GatewayError(
				502,
				`The provider refused the API key of pool "${pool.name}" (status ${upstream.status}); the operator must check the secret ${pool.apiKeySecret}.`,
				"provider_auth",
			);
		}

		const headers = callerResponseHeaders(upstream.headers);
		setRateLimitHeaders(headers, admission.status);
		headers.set("x-tollbooth-pool", pool.name);
		headers.set("x-tollbooth-queue-ms", String(Math.round(record.queueMs)));
		headers.set("x-tollbooth-retries", String(record.attempts - 1));
		headers.set("x-tollbooth-priority", priority.effective);
		if (priority.capped) headers.set("x-tollbooth-priority-capped-from", priority.requested);
		record.status = upstream.status;
		record.outcome = upstream.ok ? "ok" : "provider_error";
		record.cause = upstream.ok ? "ok" : `provider_${upstream.status}`;

		const release = (usage: Usage | undefined, charged: "usage" | "nothing") => {
			if (usage) {
				record.promptTokens = usage.inputTokens;
				record.completionTokens = usage.outputTokens;
			}
			const actual =
				charged === "nothing" ? 0 : usage ? usage.inputTokens + usage.outputTokens : undefined;
			return poolClient.release(lease.ticketId, actual);
		};

		const isStream = upstream.headers.get("content-type")?.includes("text/event-stream") ?? false;
		if (isStream && upstream.body) {
			const meter = provider.meterStream(prepared?.injectedUsage ?? false);
			const rearmIdle = () => deadline.arm("idle", pool.streamIdleTimeoutMs);
			rearmIdle();
			const { readable, ended } = relayStream(upstream.body, meter, provider, rearmIdle);
			record.deferred = true;
			c.executionCtx.waitUntil(
				ended.then(async (end) => {
					if (end === "caller_gone")
						Object.assign(record, { outcome: "cancelled", cause: "caller_gone" });
					if (end === "upstream_broke")
						Object.assign(record, { outcome: "upstream_failed", cause: "stream_broke" });
					deadline.disarm();
					await release(meter.usage(), "usage");
					c.var.usage.write(record);
				}),
			);
			return new Response(readable, { status: upstream.status, headers });
		}

		let text: string;
		deadline.arm("total", Math.max(0, pool.totalTimeoutMs - (Date.now() - startedMs)));
		try {
			text = await upstream.text();
		} catch (error) {
			c.executionCtx.waitUntil(release(undefined, "usage"));
			throw deadline.failure(error);
		} finally {
			deadline.disarm();
		}
		const usage = upstream.ok ? provider.usageFromJson(rest, parseJson(text)) : undefined;
		// The provider did no billable work when it answered with an error.
		c.executionCtx.waitUntil(release(usage, upstream.ok ? "usage" : "nothing"));
		return new Response(text, { status: upstream.status, headers });
	}
}

function admitted(result: AcquireResult) {
	if (result.kind === "admitted") return result.lease;
	if (result.kind === "cancelled") {
		throw new GatewayError(499, "The caller closed the request while it waited.", "cancelled");
	}
	const headers = new Headers();
	setRateLimitHeaders(headers, result.status);
	if (result.reason === "too_large") {
		throw new GatewayError(400, result.message, "too_large", { headers });
	}
	const extras = { retryAfterMs: result.retryAfterMs, headers };
	if (result.reason === "queue_full")
		throw new GatewayError(503, result.message, "queue_full", extras);
	throw new GatewayError(429, result.message, "deadline", extras);
}

interface Cost {
	model: string;
	tokens: number;
	/** The parsed body, when it is JSON. */
	json?: unknown;
}

function estimateCost(c: Context<GatewayEnv>, rest: string, raw: ArrayBuffer | undefined): Cost {
	const { pool, provider } = c.var;
	const contentType = c.req.header("content-type") ?? "";
	if (raw === undefined || !contentType.includes("json")) {
		if (MODEL_ENDPOINTS.has(rest) && c.req.method === "POST") {
			throw new GatewayError(
				400,
				`${rest} takes a JSON body (content-type: application/json).`,
				"bad_json",
			);
		}
		return { model: "", tokens: 0 };
	}
	const json = parseJson(new TextDecoder().decode(raw));
	if (json === undefined) {
		throw new GatewayError(400, "The request body is not valid JSON.", "bad_json");
	}
	const estimate = provider.estimate(rest, json, pool.defaultMaxOutputTokens);
	if (estimate.kind === "invalid") {
		if (MODEL_ENDPOINTS.has(rest)) throw new GatewayError(400, estimate.message, "bad_request");
		return { model: "", tokens: 0, json };
	}
	c.var.record.promptTokens = estimate.promptTokens;
	return { model: estimate.model, tokens: estimate.tokens, json };
}

function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

/** x-priority, capped by the tenant's maximum (silently: the response says so). */
export function effectivePriority(
	header: string | null,
	defaultPriority: Priority,
	maxPriority: Priority,
): { requested: Priority; effective: Priority; capped: boolean } {
	const value = header?.trim().toLowerCase();
	if (value && !PRIORITIES.includes(value as Priority)) {
		throw new GatewayError(
			400,
			`x-priority must be one of ${PRIORITIES.join(", ")}; got "${header}".`,
			"bad_priority",
		);
	}
	const requested = (value as Priority | undefined) || defaultPriority;
	const capped = PRIORITIES.indexOf(requested) < PRIORITIES.indexOf(maxPriority);
	return { requested, effective: capped ? maxPriority : requested, capped };
}

function requestedMaxWaitMs(header: string | null, poolMaxWaitMs: number): number {
	if (header === null) return poolMaxWaitMs;
	const value = Number(header);
	if (!Number.isFinite(value) || value < 0) {
		throw new GatewayError(
			400,
			`x-max-wait-ms must be a number of milliseconds ≥ 0; got "${header}".`,
			"bad_max_wait",
		);
	}
	return Math.min(value, poolMaxWaitMs);
}
