// The request path for /<pool>/v1/*: estimate the cost, wait for the Pool's admission, send with
// the pool's key, let the Pool judge every send that did not succeed (send again, or give up),
// relay the answer, release the lease.
import type { Context } from "hono";
import type { PoolConfig } from "../config.ts";
import type {
	AcquireRequest,
	AcquireResult,
	AttemptAnswer,
	AttemptReport,
} from "../durable/pool.ts";
import { isRecord, parseJson } from "../providers/estimate.ts";
import { providerFor } from "../providers/index.ts";
import type { Provider } from "../providers/types.ts";
import { admitBudget } from "./budget-gate.ts";
import { setRateLimitHeaders } from "./caller-limit-headers.ts";
import {
	type Cost,
	effectivePriority,
	estimateCost,
	readJson,
	requestedMaxWaitMs,
} from "./caller-request.ts";
import type { GatewayEnv } from "./env.ts";
import { GatewayError, retryAfterSeconds } from "./errors.ts";
import { LeaseRenewal } from "./lease-renewal.ts";
import { PoolAdmission } from "./pool-admission.ts";
import { readBody } from "./request-body.ts";
import { type SendOutcome, sendOnce } from "./send.ts";
import {
	callerResponseHeaders,
	relayStream,
	scrubSecrets,
	upstreamRequestHeaders,
	upstreamUrl,
} from "./upstream.ts";

/** Why a pool may turn a request away that its fallback pool could still serve. */
const OVERFLOW_REASONS = new Set([
	"circuit_open",
	"deadline",
	"queue_full",
	"shed",
	"provider_rate_limited",
]);

export async function proxy(c: Context<GatewayEnv>): Promise<Response> {
	const pool = c.get("pool");
	const provider = c.get("provider");
	const config = c.get("config");
	const usage = c.get("usage");
	const request = c.req.raw;
	const { rest } = c.get("route");
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
		usage.record.pool = fallback.name;
		return forward(
			c,
			fallback,
			estimateCost(fallbackProvider, fallback, rest, fallbackJson),
			rest,
			raw,
		);
	}
}

/** Sends the request through one pool: admission, each send and the Pool's verdict on it, the answer. */
async function forward(
	c: Context<GatewayEnv>,
	pool: PoolConfig,
	estimated: Cost,
	rest: string,
	raw: ArrayBuffer | undefined,
): Promise<Response> {
	// The tenant's budget first: its reservation is settled when the request's record completes.
	const cost = await admitBudget(c, estimated);
	const { record } = c.get("usage");
	const signal = c.req.raw.signal;
	const send = prepareSend(c, pool, cost, rest, raw);
	const { ask, apiKey, provider } = send;
	const poolClient = new PoolAdmission(c.env.POOL, pool, (promise) =>
		c.executionCtx.waitUntil(promise),
	);
	const release = (...args: Parameters<PoolAdmission["release"]>) =>
		c.executionCtx.waitUntil(poolClient.release(...args));

	let admission: AcquireResult = await poolClient.acquire(ask, signal);
	for (;;) {
		record.queueMs += admission.queueMs;
		const lease = admittedLease(admission);
		if (signal.aborted) {
			// Admitted as the caller left: nothing was sent, so nothing is charged.
			release(lease.ticketId, 0);
			throw new GatewayError(499, "The caller closed the request.", "cancelled");
		}
		record.attempts += 1;
		const renewal = new LeaseRenewal(
			() => poolClient.renew(lease.ticketId),
			pool.leaseTtlMs,
			(promise) => c.executionCtx.waitUntil(promise),
		);
		const sendStartedMs = Date.now();
		const sent = await sendOnce(
			send.url,
			send.init,
			pool,
			provider,
			signal,
			c.get("upstreamFetch"),
		);
		record.upstreamMs += Date.now() - sendStartedMs;
		if (sent.kind !== "answered") renewal.stop();
		if (sent.kind === "caller_gone") {
			// The send has ended (its fetch was aborted); the provider may have started: keep the charge.
			release(lease.ticketId, undefined);
			throw sent.error;
		}
		if (sent.kind === "answered") {
			const headers = answerHeaders(c, sent.response.headers, send, admission.limits);
			return relayAnswer(c, sent, headers, {
				provider,
				rest,
				injectedUsage: send.injectedUsage,
				apiKey,
				renewal,
				release: (actualTokens) => {
					renewal.stop();
					return poolClient.release(lease.ticketId, actualTokens, true, sent.limits);
				},
			});
		}
		const answer = await poolClient.attemptEnded(lease.ticketId, reportOf(sent), ask, signal);
		if (answer.kind === "final") return finalAnswer(c, sent, answer, send);
		if (sent.kind === "refused" && sent.status === 429) record.retriesAfterRateLimit += 1;
		else record.retriesAfterFailure += 1;
		admission = answer;
	}
}

/** Everything a send of this request needs: where, what, with which key, and its ticket. */
interface PreparedSend {
	pool: PoolConfig;
	url: URL;
	init: RequestInit;
	ask: AcquireRequest;
	apiKey: string;
	provider: Provider;
	priority: ReturnType<typeof effectivePriority>;
	injectedUsage: boolean;
}

function prepareSend(
	c: Context<GatewayEnv>,
	pool: PoolConfig,
	cost: Cost,
	rest: string,
	raw: ArrayBuffer | undefined,
): PreparedSend {
	const tenant = c.get("tenant");
	const usage = c.get("usage");
	const provider = providerFor(pool.provider);
	const request = c.req.raw;
	const priority = effectivePriority(
		request.headers.get("x-priority"),
		tenant.defaultPriority,
		tenant.maxPriority,
	);
	usage.record.priority = priority.effective;
	usage.record.model = cost.model;
	usage.record.promptTokens = cost.promptTokens;

	const apiKey = (c.env as unknown as Record<string, unknown>)[pool.apiKeySecret];
	if (typeof apiKey !== "string" || apiKey === "") {
		throw new GatewayError(
			500,
			`Pool "${pool.name}" has no provider key: set the secret with 'wrangler secret put ${pool.apiKeySecret}'.`,
			"no_provider_key",
		);
	}
	const prepared = cost.json === undefined ? undefined : provider.prepareBody(rest, cost.json);
	return {
		pool,
		url: upstreamUrl(pool.baseUrl, rest, c.get("route").search),
		init: {
			method: request.method,
			headers: upstreamRequestHeaders(request.headers, provider, apiKey, pool),
			body: prepared ? JSON.stringify(prepared.body) : raw,
		},
		ask: {
			ticketId: crypto.randomUUID(),
			tenant: tenant.name,
			model: cost.model,
			priority: priority.effective,
			tokens: cost.tokens,
			maxWaitMs: requestedMaxWaitMs(
				request.headers.get("x-max-wait-ms"),
				pool.maxWaitMs[priority.effective],
			),
		},
		apiKey,
		provider,
		priority,
		injectedUsage: prepared?.injectedUsage ?? false,
	};
}

/** The Pool gave up on the request: the caller gets the provider's answer, or tollbooth's own. */
function finalAnswer(
	c: Context<GatewayEnv>,
	sent: Extract<SendOutcome, { kind: "refused" | "no_answer" }>,
	answer: Extract<AttemptAnswer, { kind: "final" }>,
	send: PreparedSend,
): Response {
	const usage = c.get("usage");
	const { pool } = send;
	if (sent.kind === "no_answer") throw sent.error;
	if (answer.reason === "provider_rate_limited") {
		const retryAfterMs = answer.retryAfterMs ?? 0;
		throw new GatewayError(
			429,
			`The provider kept rate limiting pool "${pool.name}" after ${usage.record.attempts} attempts; retry after ${retryAfterSeconds(retryAfterMs)} s.`,
			"provider_rate_limited",
			{ retryAfterMs },
		);
	}
	if (sent.status === 401 || sent.status === 403) {
		// The provider refused the pool's own key: its message may quote part of that key.
		throw new GatewayError(
			502,
			`The provider refused the API key of pool "${pool.name}" (status ${sent.status}); the operator must check the secret ${pool.apiKeySecret}.`,
			"provider_auth",
		);
	}
	usage.record.status = sent.status;
	usage.end("provider_error", answer.reason);
	const headers = answerHeaders(c, sent.headers, send, answer.limits);
	// An error answer may quote the pool's key: never relay it as it is.
	return new Response(scrubSecrets(sent.text, send.apiKey), { status: sent.status, headers });
}

/** The facts of a send that did not succeed, for the Pool to judge. */
function reportOf(sent: Extract<SendOutcome, { kind: "refused" | "no_answer" }>): AttemptReport {
	if (sent.kind === "no_answer") return { noAnswer: sent.cause };
	const report: AttemptReport = { status: sent.status, reported: sent.limits };
	if (sent.limits.retryAfterMs !== undefined) report.retryAfterMs = sent.limits.retryAfterMs;
	if (sent.limits.shouldRetry !== undefined) report.shouldRetry = sent.limits.shouldRetry;
	return report;
}

function answerHeaders(
	c: Context<GatewayEnv>,
	upstream: Headers,
	send: PreparedSend,
	limits: AcquireResult["limits"],
): Headers {
	const { record } = c.get("usage");
	const headers = callerResponseHeaders(upstream, send.apiKey);
	setRateLimitHeaders(headers, limits);
	headers.set("x-tollbooth-pool", send.pool.name);
	headers.set("x-tollbooth-queue-ms", String(Math.round(record.queueMs)));
	headers.set("x-tollbooth-retries", String(record.attempts - 1));
	headers.set("x-tollbooth-priority", send.priority.effective);
	if (send.priority.capped)
		headers.set("x-tollbooth-priority-capped-from", send.priority.requested);
	return headers;
}

interface RelayContext {
	provider: Provider;
	rest: string;
	injectedUsage: boolean;
	/** The pool's key, scrubbed from whatever the provider's stream says. */
	apiKey: string;
	/** Renews the lease while the answer is coming; stopped by release. */
	renewal: LeaseRenewal;
	/** Ends the lease with the tokens the provider reported (undefined keeps the reservation). */
	release(actualTokens: number | undefined): Promise<void>;
}

/** Relays a 2xx answer, streamed or whole, and ends the lease once the upstream answer has ended. */
async function relayAnswer(
	c: Context<GatewayEnv>,
	sent: Extract<SendOutcome, { kind: "answered" }>,
	headers: Headers,
	relay: RelayContext,
): Promise<Response> {
	const usage = c.get("usage");
	const { response, deadline } = sent;
	const pool = c.get("pool");
	usage.record.status = response.status;
	const isStream = response.headers.get("content-type")?.includes("text/event-stream") ?? false;
	if (isStream && response.body) {
		const meter = relay.provider.meterStream(relay.injectedUsage);
		const rearmIdle = () => {
			deadline.arm("idle", pool.streamIdleTimeoutMs);
			relay.renewal.touch();
		};
		rearmIdle();
		const { readable, ended } = relayStream(
			response.body,
			meter,
			relay.provider,
			rearmIdle,
			relay.apiKey,
		);
		usage.endsWithStream(
			ended.then(async (end) => {
				// A caller gone mid-stream: the slot is free only once the provider's request has ended.
				if (end === "caller_gone") deadline.abort();
				else deadline.disarm();
				const used = meter.usage();
				if (end === "caller_gone") usage.end("cancelled", "caller_gone", used);
				else if (end === "upstream_broke") usage.end("upstream_failed", "stream_broke", used);
				else usage.end("ok", "ok", used);
				await relay.release(used ? used.inputTokens + used.outputTokens : undefined);
			}),
		);
		return new Response(readable, { status: response.status, headers });
	}

	let text: string;
	deadline.arm("total", Math.max(0, pool.totalTimeoutMs - (Date.now() - sent.startedMs)));
	try {
		text = await response.text();
	} catch (error) {
		c.executionCtx.waitUntil(relay.release(undefined));
		throw deadline.failure(error);
	} finally {
		deadline.disarm();
	}
	const used = relay.provider.usageFromJson(relay.rest, parseJson(text));
	usage.end("ok", "ok", used);
	c.executionCtx.waitUntil(relay.release(used ? used.inputTokens + used.outputTokens : undefined));
	return new Response(text, { status: response.status, headers });
}

/** The lease of an admission, or the error the caller gets for a refusal. */
function admittedLease(result: AcquireResult) {
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
