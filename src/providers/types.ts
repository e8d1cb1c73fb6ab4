// The provider layer's contract: what the gateway asks of each upstream API (cost estimate, usage,
// rate-limit headers, error shapes), independent of which provider answers.

export type ProviderKind = "openai" | "anthropic" | "openai-compatible";

/**
 * Tokens a request consumed. `inputTokens` includes cached and cache-creation input; the parts are
 * present when the provider reported them.
 */
export interface Usage {
	inputTokens: number;
	outputTokens: number;
	/** Input tokens read from the provider's prompt cache (billed at a discount). */
	cachedInputTokens?: number;
	/** Input tokens written to the provider's prompt cache (Anthropic; billed above the base rate). */
	cacheWriteInputTokens?: number;
	/** Output tokens spent on reasoning (included in outputTokens). */
	reasoningTokens?: number;
}

/** The cost to reserve before forwarding, or why the request cannot be forwarded at all. */
export type Estimate =
	| {
			kind: "estimate";
			model: string;
			stream: boolean;
			promptTokens: number;
			maxOutputTokens: number;
			/** promptTokens + maxOutputTokens: what the pool reserves. */
			tokens: number;
	  }
	| { kind: "invalid"; message: string };

/** Relays a provider's SSE body and reads its usage on the way through. */
export interface StreamMeter {
	stream: TransformStream<Uint8Array, Uint8Array>;
	/** Usage seen so far; also meaningful after the stream broke. Undefined if none was reported. */
	usage(): Usage | undefined;
}

/** One rate-limit window as the provider reports it. `resetMs` is the time until it resets. */
export interface RateLimitWindow {
	limit?: number;
	remaining?: number;
	resetMs?: number;
}

/** Rate-limit headers of either provider in one shape; absent or malformed values are left out. */
export interface RateLimitInfo {
	requests?: RateLimitWindow;
	/** Input + output tokens (OpenAI's only token window; Anthropic's combined one). */
	tokens?: RateLimitWindow;
	inputTokens?: RateLimitWindow;
	outputTokens?: RateLimitWindow;
	/** How long the provider asks callers to wait before the next attempt. */
	retryAfterMs?: number;
	/** The provider's explicit retry verdict (`x-should-retry`), which overrides the status. */
	shouldRetry?: boolean;
}

export interface Provider {
	kind: ProviderKind;
	/** Endpoints (canonical paths after /v1) that run a model and are metered by their tokens. */
	meteredRoutes: ReadonlySet<string>;
	/** Client headers of this API that cross to the provider as sent (besides the common ones). */
	forwardedHeaders: readonly string[];
	/** The header that opts into beta features; only values the pool permits cross. */
	betaHeader: string;
	/** Headers that carry the real provider key upstream. */
	authHeaders(apiKey: string): Record<string, string>;
	/** `path` is the part after /v1, e.g. "/chat/completions" or "/messages". */
	estimate(path: string, body: unknown, defaultMaxOutputTokens: number): Estimate;
	/** The body to forward; `injectedUsage` when tollbooth asked for a usage chunk the client did not. */
	prepareBody(path: string, body: unknown): { body: unknown; injectedUsage: boolean };
	usageFromJson(path: string, json: unknown): Usage | undefined;
	meterStream(injectedUsage: boolean): StreamMeter;
	/** The provider's own error JSON for `status`, so its SDKs raise their usual error class. */
	errorBody(status: number, message: string): unknown;
	/** One SSE event in the provider's own in-stream error format, for a stream that breaks mid-way. */
	errorEvent(status: number, message: string): string;
	parseRateLimitHeaders(headers: Headers, nowMs: number): RateLimitInfo;
}
