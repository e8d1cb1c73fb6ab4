// Anthropic Messages API: cost estimates, usage from bodies and streams (message_start then
// message_delta totals), anthropic-ratelimit-* headers, and Anthropic's error envelope.

import * as v from "valibot";
import {
	BODY_NOT_AN_OBJECT,
	estimateOf,
	estimatePromptTokens,
	invalid,
	isRecord,
	messageCount,
	missingModelMessage,
	tokenLimit,
	unmeteredEstimate,
} from "./estimate.ts";
import {
	parseCount,
	parseRfc3339DelayMs,
	rateLimitInfo,
	rateLimitWindow,
} from "./provider-limit-headers.ts";
import { meterSse } from "./sse-meter.ts";
import type { Estimate, Provider, RateLimitInfo, StreamMeter, Usage } from "./types.ts";

const EXAMPLE_MODEL = "claude-sonnet-4-5";

const tokenCount = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
/** The usage keys tollbooth reads; the API sends null for cache fields it does not report. */
const usageFields = v.object({
	input_tokens: v.nullish(tokenCount),
	output_tokens: v.nullish(tokenCount),
	cache_creation_input_tokens: v.nullish(tokenCount),
	cache_read_input_tokens: v.nullish(tokenCount),
});
type UsageFields = v.InferOutput<typeof usageFields>;

/** The status → error type table of the API's errors page (errors_observed.json). */
const ERROR_TYPES: Record<number, string> = {
	400: "invalid_request_error",
	401: "authentication_error",
	402: "billing_error",
	403: "permission_error",
	404: "not_found_error",
	413: "request_too_large",
	429: "rate_limit_error",
	500: "api_error",
	502: "api_error",
	503: "overloaded_error", // tollbooth sheds load with 503: the caller should back off like on 529
	504: "timeout_error",
	529: "overloaded_error",
};

function toUsage(fields: UsageFields): Usage | undefined {
	if (fields.input_tokens == null && fields.output_tokens == null) return undefined;
	return {
		inputTokens:
			(fields.input_tokens ?? 0) +
			(fields.cache_creation_input_tokens ?? 0) +
			(fields.cache_read_input_tokens ?? 0),
		outputTokens: fields.output_tokens ?? 0,
		// Cache writes are input too (billed above the base rate); reads are the discounted part.
		...(fields.cache_read_input_tokens != null && {
			cachedInputTokens: fields.cache_read_input_tokens,
		}),
		...(fields.cache_creation_input_tokens != null && {
			cacheWriteInputTokens: fields.cache_creation_input_tokens,
		}),
	};
}

/** message_delta usage values are running totals: a key it carries replaces the earlier value. */
function mergeUsage(earlier: UsageFields, delta: UsageFields): UsageFields {
	const merged = { ...earlier };
	for (const key of Object.keys(usageFields.entries) as (keyof UsageFields)[]) {
		const value = delta[key];
		if (value != null) merged[key] = value;
	}
	return merged;
}

const METERED_ROUTES: ReadonlySet<string> = new Set(["/messages", "/messages/count_tokens"]);

function estimate(path: string, body: unknown, defaultMaxOutputTokens: number): Estimate {
	const bare = path.split("?")[0]?.replace(/\/+$/, "") ?? "";
	if (!METERED_ROUTES.has(bare)) {
		return unmeteredEstimate(body);
	}
	if (!isRecord(body)) return invalid(BODY_NOT_AN_OBJECT);
	const model = body.model;
	if (typeof model !== "string" || model === "") return invalid(missingModelMessage(EXAMPLE_MODEL));
	// Counting tokens is free; only its request rate is limited.
	if (bare === "/messages/count_tokens") return estimateOf(model, body, 0, 0);
	// output_config carries a structured-output schema, which the model reads as prompt.
	const promptTokens = estimatePromptTokens(
		[body.system, body.messages, body.tools, body.output_config],
		messageCount(body.messages),
	);
	const maxTokens = tokenLimit(body, "max_tokens");
	if (typeof maxTokens === "string") return invalid(maxTokens);
	return estimateOf(model, body, promptTokens, maxTokens ?? defaultMaxOutputTokens);
}

function usageFromJson(_path: string, json: unknown): Usage | undefined {
	if (!isRecord(json)) return undefined;
	const parsed = v.safeParse(usageFields, json.usage);
	return parsed.success ? toUsage(parsed.output) : undefined;
}

function meterStream(): StreamMeter {
	let totals: UsageFields | undefined;
	return meterSse(
		{
			observe(data) {
				if (!isRecord(data)) return false;
				if (data.type === "message_start" && isRecord(data.message)) {
					const parsed = v.safeParse(usageFields, data.message.usage);
					if (parsed.success) totals = parsed.output;
				} else if (data.type === "message_delta") {
					const parsed = v.safeParse(usageFields, data.usage);
					if (parsed.success) totals = mergeUsage(totals ?? {}, parsed.output);
				}
				return false;
			},
			usage: () => (totals === undefined ? undefined : toUsage(totals)),
		},
		false,
	);
}

function errorBody(status: number, message: string): unknown {
	const type = ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
	return { type: "error", error: { type, message } };
}

/** Anthropic streams report an error as a named `error` event carrying the error envelope. */
function errorEvent(status: number, message: string): string {
	return `event: error\ndata: ${JSON.stringify(errorBody(status, message))}\n\n`;
}

function parseRateLimitHeaders(headers: Headers, nowMs: number): RateLimitInfo {
	const window = (name: "requests" | "tokens" | "input-tokens" | "output-tokens") =>
		rateLimitWindow(
			parseCount(headers.get(`anthropic-ratelimit-${name}-limit`)),
			parseCount(headers.get(`anthropic-ratelimit-${name}-remaining`)),
			parseRfc3339DelayMs(headers.get(`anthropic-ratelimit-${name}-reset`), nowMs),
		);
	return rateLimitInfo(
		{
			requests: window("requests"),
			tokens: window("tokens"),
			inputTokens: window("input-tokens"),
			outputTokens: window("output-tokens"),
		},
		headers,
		nowMs,
	);
}

export const anthropicProvider: Provider = {
	kind: "anthropic",
	meteredRoutes: METERED_ROUTES,
	forwardedHeaders: ["anthropic-version"],
	betaHeader: "anthropic-beta",
	authHeaders: (apiKey) => ({ "x-api-key": apiKey }),
	estimate,
	prepareBody: (_path, body) => ({ body, injectedUsage: false }),
	usageFromJson,
	meterStream,
	errorBody,
	errorEvent,
	parseRateLimitHeaders,
};
