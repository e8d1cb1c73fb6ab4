// OpenAI and OpenAI-compatible APIs: cost estimates for chat/completions, completions, responses and
// embeddings, usage from bodies and streams, x-ratelimit-* headers, and OpenAI's error envelope.

import * as v from "valibot";
import {
	BODY_NOT_AN_OBJECT,
	choiceCount,
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
	parseGoDurationMs,
	rateLimitInfo,
	rateLimitWindow,
} from "./provider-limit-headers.ts";
import { meterSse } from "./sse-meter.ts";
import type { Estimate, Provider, RateLimitInfo, StreamMeter, Usage } from "./types.ts";

const METERED_PATHS = ["/chat/completions", "/completions", "/responses", "/embeddings"] as const;
type MeteredPath = (typeof METERED_PATHS)[number];
const METERED_ROUTES: ReadonlySet<string> = new Set(METERED_PATHS);

const EXAMPLE_MODEL: Record<MeteredPath, string> = {
	"/chat/completions": "gpt-4o-mini",
	"/completions": "gpt-3.5-turbo-instruct",
	"/responses": "gpt-4o-mini",
	"/embeddings": "text-embedding-3-small",
};

const tokenCount = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
/** `*_tokens_details` with the one count tollbooth reads (null or absent: not reported). */
const cachedDetails = v.nullish(v.object({ cached_tokens: v.nullish(tokenCount) }));
const reasoningDetails = v.nullish(v.object({ reasoning_tokens: v.nullish(tokenCount) }));

/** The parts of the input and output the provider reported, and only those. */
function usageOf(
	inputTokens: number,
	outputTokens: number,
	cachedInputTokens: number | null | undefined,
	reasoningTokens: number | null | undefined,
): Usage {
	const usage: Usage = { inputTokens, outputTokens };
	if (cachedInputTokens != null) usage.cachedInputTokens = cachedInputTokens;
	if (reasoningTokens != null) usage.reasoningTokens = reasoningTokens;
	return usage;
}

/** chat/completions, completions and embeddings (which has no completion_tokens). */
const completionUsage = v.pipe(
	v.object({
		prompt_tokens: tokenCount,
		completion_tokens: v.optional(tokenCount),
		prompt_tokens_details: cachedDetails,
		completion_tokens_details: reasoningDetails,
	}),
	v.transform(
		(usage): Usage =>
			usageOf(
				usage.prompt_tokens,
				usage.completion_tokens ?? 0,
				usage.prompt_tokens_details?.cached_tokens,
				usage.completion_tokens_details?.reasoning_tokens,
			),
	),
);
const responseUsage = v.pipe(
	v.object({
		input_tokens: tokenCount,
		output_tokens: tokenCount,
		input_tokens_details: cachedDetails,
		output_tokens_details: reasoningDetails,
	}),
	v.transform(
		(usage): Usage =>
			usageOf(
				usage.input_tokens,
				usage.output_tokens,
				usage.input_tokens_details?.cached_tokens,
				usage.output_tokens_details?.reasoning_tokens,
			),
	),
);
const anyUsage = v.union([responseUsage, completionUsage]);

/** Responses API events that carry the final usage (response.created carries zeros). */
const RESPONSE_END_EVENTS = new Set([
	"response.completed",
	"response.incomplete",
	"response.failed",
]);

/**
 * Error `type` and `code` per status. Types follow api.openai.com (errors.json fixtures); codes
 * without a documented value are descriptive. The SDKs pick their error class by status.
 */
const ERROR_KINDS: Record<number, { type: string; code: string | null }> = {
	400: { type: "invalid_request_error", code: null },
	401: { type: "invalid_request_error", code: "invalid_api_key" },
	404: { type: "invalid_request_error", code: "not_found" },
	413: { type: "invalid_request_error", code: "request_too_large" },
	429: { type: "requests", code: "rate_limit_exceeded" },
	500: { type: "server_error", code: null },
	502: { type: "server_error", code: "bad_gateway" },
	503: { type: "server_error", code: "service_unavailable" },
	504: { type: "server_error", code: "timeout" },
};

function meteredPath(path: string): MeteredPath | undefined {
	const bare = path.split("?")[0]?.replace(/\/+$/, "");
	return METERED_PATHS.find((metered) => metered === bare);
}

function estimate(path: string, body: unknown, defaultMaxOutputTokens: number): Estimate {
	const endpoint = meteredPath(path);
	if (endpoint === undefined) {
		return unmeteredEstimate(body);
	}
	if (!isRecord(body)) return invalid(BODY_NOT_AN_OBJECT);
	const model = body.model;
	if (typeof model !== "string" || model === "") {
		return invalid(missingModelMessage(EXAMPLE_MODEL[endpoint]));
	}
	switch (endpoint) {
		case "/chat/completions": {
			const promptTokens = estimatePromptTokens(
				[body.messages, body.tools, body.functions, body.response_format],
				messageCount(body.messages),
			);
			const perChoice = tokenLimit(body, "max_completion_tokens", "max_tokens");
			const choices = choiceCount(body, "n");
			if (typeof perChoice === "string") return invalid(perChoice);
			if (typeof choices === "string") return invalid(choices);
			return estimateOf(model, body, promptTokens, (perChoice ?? defaultMaxOutputTokens) * choices);
		}
		case "/completions": {
			const promptTokens = estimatePromptTokens([body.prompt, body.suffix], 0);
			const perChoice = tokenLimit(body, "max_tokens");
			const choices = choiceCount(body, "n", "best_of");
			if (typeof perChoice === "string") return invalid(perChoice);
			if (typeof choices === "string") return invalid(choices);
			return estimateOf(model, body, promptTokens, (perChoice ?? defaultMaxOutputTokens) * choices);
		}
		case "/responses": {
			// Context carried by previous_response_id or a conversation is not in the body; the
			// reported usage reconciles it.
			const promptTokens = estimatePromptTokens(
				[body.input, body.instructions, body.tools, body.text],
				messageCount(body.input),
			);
			const maxOutputTokens = tokenLimit(body, "max_output_tokens");
			if (typeof maxOutputTokens === "string") return invalid(maxOutputTokens);
			return estimateOf(model, body, promptTokens, maxOutputTokens ?? defaultMaxOutputTokens);
		}
		case "/embeddings":
			return estimateOf(model, body, estimatePromptTokens([body.input], 0), 0);
	}
}

/**
 * A streamed chat/completions or completions answer reports usage only when the request sets
 * stream_options.include_usage; tollbooth needs it, so it asks and later hides the extra chunk.
 */
function prepareBody(path: string, body: unknown): { body: unknown; injectedUsage: boolean } {
	const endpoint = meteredPath(path);
	const hasUsageOption = endpoint === "/chat/completions" || endpoint === "/completions";
	if (!hasUsageOption || !isRecord(body) || body.stream !== true) {
		return { body, injectedUsage: false };
	}
	const streamOptions = isRecord(body.stream_options) ? body.stream_options : {};
	if (streamOptions.include_usage === true) return { body, injectedUsage: false };
	return {
		body: { ...body, stream_options: { ...streamOptions, include_usage: true } },
		injectedUsage: true,
	};
}

function usageFromJson(_path: string, json: unknown): Usage | undefined {
	if (!isRecord(json)) return undefined;
	const parsed = v.safeParse(anyUsage, json.usage);
	return parsed.success ? parsed.output : undefined;
}

function meterStream(injectedUsage: boolean): StreamMeter {
	let usage: Usage | undefined;
	return meterSse(
		{
			observe(data) {
				if (!isRecord(data)) return false;
				// Responses API: the event name is in `type`, whether or not the stream has event: lines.
				if (typeof data.type === "string" && RESPONSE_END_EVENTS.has(data.type)) {
					const parsed = v.safeParse(responseUsage, isRecord(data.response) && data.response.usage);
					if (parsed.success) usage = parsed.output;
					return false;
				}
				if (!isRecord(data.usage)) return false; // chunks before the last carry none, or null
				const parsed = v.safeParse(completionUsage, data.usage);
				if (!parsed.success) return false;
				usage = parsed.output;
				const usageOnlyChunk = Array.isArray(data.choices) && data.choices.length === 0;
				return injectedUsage && usageOnlyChunk;
			},
			usage: () => usage,
		},
		injectedUsage,
	);
}

function errorBody(status: number, message: string): unknown {
	const kind = ERROR_KINDS[status] ?? {
		type: status >= 500 ? "server_error" : "invalid_request_error",
		code: null,
	};
	return { error: { message, type: kind.type, param: null, code: kind.code } };
}

/** OpenAI streams report an error as a data-only event whose object has an `error` key. */
function errorEvent(status: number, message: string): string {
	return `data: ${JSON.stringify(errorBody(status, message))}\n\n`;
}

function parseRateLimitHeaders(headers: Headers, nowMs: number): RateLimitInfo {
	const window = (name: "requests" | "tokens") =>
		rateLimitWindow(
			parseCount(headers.get(`x-ratelimit-limit-${name}`)),
			parseCount(headers.get(`x-ratelimit-remaining-${name}`)),
			parseGoDurationMs(headers.get(`x-ratelimit-reset-${name}`)),
		);
	return rateLimitInfo({ requests: window("requests"), tokens: window("tokens") }, headers, nowMs);
}

export function openAiProvider(kind: "openai" | "openai-compatible"): Provider {
	return {
		kind,
		meteredRoutes: METERED_ROUTES,
		forwardedHeaders: [],
		betaHeader: "openai-beta",
		authHeaders: (apiKey) => ({ authorization: `Bearer ${apiKey}` }),
		estimate,
		prepareBody,
		usageFromJson,
		meterStream,
		errorBody,
		errorEvent,
		parseRateLimitHeaders,
	};
}
