// The request path for /<pool>/v1/*: estimate the cost, wait for the Pool's admission, forward
// with the pool's key, absorb provider 429s and failures through the Pool, relay the answer,
// release the lease.
import type { Context } from "hono";
import type { PoolConfig } from "../config.ts";
import { classifyFailure, type Failure } from "../core/backoff.ts";
import type { AcquireRequest, AcquireResult } from "../durable/pool.ts";
import { isRecord } from "../providers/estimate.ts";
import { providerFor } from "../providers/index.ts";
import type { Usage } from "../providers/types.ts";
import type { GatewayEnv } from "./app.ts";
import {
	type Cost,
	effectivePriority,
	estimateCost,
	parseJson,
	readJson,
	requestedMaxWaitMs,
} from "./caller-request.ts";
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

/** Wait before resending after a provider 429 that named no retry-after (doubles per attempt). */
const DEFAULT_RETRY_AFTER_MS = 1000;

/** Why a pool may turn a request away that its fallback pool could still serve. */
const OVERFLOW_REASONS = new Set([
	"circuit_open",
	"deadline",
	"queue_full",
	"shed",
	"provider_rate_limited",
]);

export async function proxy(c: Context<GatewayEnv>): Promise<Response> {
	const { pool, provider, config, record } = c.var;
	const request = c.req.raw;
	const rest = c.req.path.slice(`/${pool.name}/v1`.length);
	const raw = await readBody(request, config.maxBodyBytes);
	const json = readJson(c, rest, raw);
	try {
		return await forward(c, pool, estimateCost(provider, pool, rest, json), rest, raw);
	} catch (error) {
		const fallback =
			pool.fallback && config.pools.find((candidate) => candidate.name === pool.fallback?.pool);
		if (!fallback || !(error instanceof GatewayError) || !OVERFLOW_REASONS.has(error.reason)) {
			throw error;
		}
		// The pool is paused, failing or full: its fallback (another key, or a mapped model) serves.
		const model = isRecord(json) && typeof json.model === "string" ? json.model : undefined;
		const mapped = model && pool.fallback?.models[model];
		const fallbackJson = mapped && isRecord(json) ? { ...json, model: mapped } : json;
		const fallbackProvider = providerFor(fallback.provider);
		record.pool = fallback.name;
		return forward(
			c,
			fallback,
			estimateCost(fallbackProvider, fallback, rest, fallbackJson),
			rest,
			raw,
		);
	}
}

/** Sends the request through one pool: admission, the send and its retries, the answer. */
async function forward(
	c: Context<GatewayEnv>,
	pool: PoolConfig,
	cost: Cost,
	rest: string,
	raw: ArrayBuffer | undefined,
): Promise<Response> {
	const { tenant, record } = c.var;
	const provider = providerFor(pool.provider);
	const request = c.req.raw;
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
	record.model = cost.model;
	record.promptTokens = cost.promptTokens;

	const apiKey = (c.env as unknown as Record<string, unknown>)[pool.apiKeySecret];
	if (typeof apiKey !== "string" || apiKey === "") {
		throw new GatewayError(
			500,
			`Pool "${pool.name}" has no provider key: set the secret with 'wrangler secret put ${pool.apiKeySecret}'.`,
			"no_provider_key",
		);
	}
	const prepared = cost.json === undefined ? undefined : provider.prepareBody(rest, cost.json);
	const upstreamInit = {
		method: request.method,
		headers: upstreamRequestHeaders(request.headers, provider, apiKey),
		body: prepared ? JSON.stringify(prepared.body) : raw,
	};

	const poolClient = new PoolClient(c.env.POOL, pool.name);
	let ask: AcquireRequest = {
		pool: pool.name,
		ticketId: crypto.randomUUID(),
		tenant: tenant.name,
		model: cost.model,
		priority: priority.effective,
		tokens: cost.tokens,
		maxWaitMs,
	};
	/** The next send of this request: a new ticket, ahead of first attempts in the queue. */
	const resend = (extraWaitMs = 0): AcquireRequest => ({
		...ask,
		ticketId: crypto.randomUUID(),
		retry: true,
		maxWaitMs: maxWaitMs + extraWaitMs,
	});
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
		let upstream: Response | undefined;
		let sendError: GatewayError | undefined;
		try {
			upstream = await c.var.upstreamFetch(url, { ...upstreamInit, signal: deadline.signal });
		} catch (error) {
			sendError = deadline.failure(error);
		} finally {
			deadline.disarm();
			record.upstreamMs += Date.now() - startedMs;
		}
		if (sendError?.reason === "cancelled") {
			c.executionCtx.waitUntil(poolClient.release(lease.ticketId, 0));
			throw sendError;
		}
		const limits = upstream && provider.parseRateLimitHeaders(upstream.headers, Date.now());

		if (upstream?.status === 429) {
			const retryAfterMs =
				limits?.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS * 2 ** (record.attempts - 1);
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
			ask = resend(retryAfterMs);
			admission = await poolClient.rateLimited(
				lease.ticketId,
				ask,
				retryAfterMs,
				limits,
				request.signal,
			);
			continue;
		}

		const failure = sendError
			? failureOfError(sendError)
			: failureOf(upstream, limits?.shouldRetry);
		if (failure) {
			const decision = await poolClient.failed(
				lease.ticketId,
				failure,
				record.attempts,
				pool.maxAttempts,
				limits?.retryAfterMs,
			);
			record.cause = decision.reason;
			if (decision.retry) {
				await upstream?.body?.cancel();
				await sleep(decision.delayMs, request.signal);
				ask = resend();
				admission = await poolClient.acquire(ask, request.signal);
				continue;
			}
		}
		// No answer at all (connection failed, no first byte in time) and no retry left.
		if (!upstream) throw sendError;

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
		setRateLimitHeaders(headers, admission.limits);
		headers.set("x-tollbooth-pool", pool.name);
		headers.set("x-tollbooth-queue-ms", String(Math.round(record.queueMs)));
		headers.set("x-tollbooth-retries", String(record.attempts - 1));
		headers.set("x-tollbooth-priority", priority.effective);
		if (priority.capped) headers.set("x-tollbooth-priority-capped-from", priority.requested);
		record.status = upstream.status;
		record.outcome = upstream.ok ? "ok" : "provider_error";
		if (!failure) record.cause = upstream.ok ? "ok" : `provider_${upstream.status}`;

		/** Ends the lease with the usage the provider reported (a failed send was released already). */
		const release = (usage: Usage | undefined) => {
			if (usage) {
				record.promptTokens = usage.inputTokens;
				record.completionTokens = usage.outputTokens;
			}
			if (failure) return Promise.resolve();
			// The provider did no billable work when it answered with an error.
			const actual = !upstream.ok ? 0 : usage ? usage.inputTokens + usage.outputTokens : undefined;
			return poolClient.release(lease.ticketId, actual, upstream.status < 500, limits);
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
					await release(meter.usage());
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
			c.executionCtx.waitUntil(release(undefined));
			throw deadline.failure(error);
		} finally {
			deadline.disarm();
		}
		const usage = upstream.ok ? provider.usageFromJson(rest, parseJson(text)) : undefined;
		c.executionCtx.waitUntil(release(usage));
		return new Response(text, { status: upstream.status, headers });
	}
}

/** A provider answer that is its failure, one a resend may cure (5xx, 529, 408, 409). */
function failureOf(
	upstream: Response | undefined,
	shouldRetry: boolean | undefined,
): Failure | undefined {
	if (!upstream) return undefined;
	const failure: Failure = { status: upstream.status, shouldRetry };
	const failureClass = classifyFailure(failure);
	return failureClass.retryable && failureClass.via === "backoff" ? failure : undefined;
}

/** No answer at all: the connection failed, or no first byte came in time. */
function failureOfError(error: GatewayError): Failure {
	return { kind: error.reason === "timeout" ? "timeout" : "connection" };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(resolve, ms);
		signal.addEventListener(
			"abort",
			() => {
				clearTimeout(timer);
				reject(new GatewayError(499, "The caller closed the request.", "cancelled"));
			},
			{ once: true },
		);
	});
}

function admitted(result: AcquireResult) {
	if (result.kind === "admitted") return result.lease;
	if (result.kind === "cancelled") {
		throw new GatewayError(499, "The caller closed the request while it waited.", "cancelled");
	}
	const headers = new Headers();
	setRateLimitHeaders(headers, result.limits);
	if (result.kind === "unavailable") {
		throw new GatewayError(503, result.message, "circuit_open", {
			retryAfterMs: result.retryAfterMs,
			headers,
		});
	}
	if (result.reason === "too_large") {
		throw new GatewayError(400, result.message, "too_large", { headers });
	}
	const extras = {
		retryAfterMs: result.retryAfterMs,
		headers,
		// Where the request stood, or would have stood, in the queue: for the caller's own planning.
		details: { queue_position: result.position, estimated_wait_ms: result.etaMs },
	};
	if (result.reason === "queue_full" || result.reason === "shed") {
		throw new GatewayError(503, result.message, result.reason, extras);
	}
	throw new GatewayError(429, result.message, "deadline", extras);
}
