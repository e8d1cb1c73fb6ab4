// Parsers for the rate-limit and retry headers providers send. Headers are outside input: an absent,
// malformed, negative, NaN or infinite value is left out of the result, never thrown on.

import type { RateLimitInfo, RateLimitWindow } from "./types.ts";

/**
 * No provider window or retry delay is longer than a day (the longest limits are per day); a
 * larger value is garbage, and believing it would stall a whole pool for that long.
 */
const MAX_PLAUSIBLE_DELAY_MS = 24 * 60 * 60 * 1000;

const COUNT = /^\d+$/;
const DECIMAL = /^\d+(?:\.\d+)?$/;
/** Go's time.Duration String() format, as in OpenAI's x-ratelimit-reset-*: "1s", "6m0s", "12ms". */
const GO_DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/y;
const GO_UNIT_MS: Record<string, number> = {
	ns: 1e-6,
	us: 1e-3,
	µs: 1e-3,
	μs: 1e-3,
	ms: 1,
	s: 1_000,
	m: 60_000,
	h: 3_600_000,
};
const RFC_3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
/** RFC 9110 IMF-fixdate, the only HTTP-date form senders may generate. */
const IMF_FIXDATE =
	/^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

function plausibleDelayMs(delayMs: number): number | undefined {
	return Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= MAX_PLAUSIBLE_DELAY_MS
		? delayMs
		: undefined;
}

/** A limit or remaining count: a non-negative integer. */
export function parseCount(value: string | null): number | undefined {
	const text = value?.trim();
	if (text === undefined || !COUNT.test(text)) return undefined;
	const count = Number(text);
	return Number.isSafeInteger(count) ? count : undefined;
}

/** A Go duration ("1m30.5s", "120ms") in milliseconds. */
export function parseGoDurationMs(value: string | null): number | undefined {
	const text = value?.trim();
	if (text === undefined || text === "") return undefined;
	if (text === "0") return 0;
	let totalMs = 0;
	GO_DURATION_PART.lastIndex = 0;
	while (GO_DURATION_PART.lastIndex < text.length) {
		const part = GO_DURATION_PART.exec(text);
		const unitMs = part?.[2] === undefined ? undefined : GO_UNIT_MS[part[2]];
		if (part === null || unitMs === undefined) return undefined;
		totalMs += Number(part[1]) * unitMs;
	}
	return plausibleDelayMs(totalMs);
}

/** An RFC 3339 instant (Anthropic's *-reset) as the time from `nowMs` until it; 0 once past. */
export function parseRfc3339DelayMs(value: string | null, nowMs: number): number | undefined {
	const text = value?.trim();
	if (text === undefined || !RFC_3339.test(text)) return undefined;
	return plausibleDelayMs(Math.max(0, Date.parse(text) - nowMs));
}

function parseMilliseconds(value: string | null): number | undefined {
	const text = value?.trim();
	if (text === undefined || !DECIMAL.test(text)) return undefined;
	return plausibleDelayMs(Number(text));
}

/** `retry-after`: seconds (fractions allowed, as the SDKs accept) or an HTTP-date. */
function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
	const text = value?.trim();
	if (text === undefined) return undefined;
	if (DECIMAL.test(text)) return plausibleDelayMs(Number(text) * 1_000);
	if (!IMF_FIXDATE.test(text)) return undefined;
	return plausibleDelayMs(Math.max(0, Date.parse(text) - nowMs));
}

/**
 * The server-directed delay, in the official SDKs' order: `retry-after-ms`, then Azure's
 * `x-ms-retry-after-ms`, then `retry-after`. A malformed header falls through to the next.
 */
export function parseRetryAfterMs(headers: Headers, nowMs: number): number | undefined {
	return (
		parseMilliseconds(headers.get("retry-after-ms")) ??
		parseMilliseconds(headers.get("x-ms-retry-after-ms")) ??
		parseRetryAfter(headers.get("retry-after"), nowMs)
	);
}

/** `x-should-retry: true|false`, the provider's verdict that overrides the status code. */
export function parseShouldRetry(headers: Headers): boolean | undefined {
	const text = headers.get("x-should-retry")?.trim().toLowerCase();
	return text === "true" ? true : text === "false" ? false : undefined;
}

export function rateLimitWindow(
	limit: number | undefined,
	remaining: number | undefined,
	resetMs: number | undefined,
): RateLimitWindow | undefined {
	const window: RateLimitWindow = {};
	if (limit !== undefined) window.limit = limit;
	if (remaining !== undefined) window.remaining = remaining;
	if (resetMs !== undefined) window.resetMs = resetMs;
	return Object.keys(window).length > 0 ? window : undefined;
}

/** Puts the windows a provider reported together with the retry headers both providers share. */
export function rateLimitInfo(
	windows: Pick<RateLimitInfo, "requests" | "tokens" | "inputTokens" | "outputTokens">,
	headers: Headers,
	nowMs: number,
): RateLimitInfo {
	const info: RateLimitInfo = {};
	for (const [name, window] of Object.entries(windows)) {
		if (window !== undefined) info[name as keyof typeof windows] = window;
	}
	const retryAfterMs = parseRetryAfterMs(headers, nowMs);
	if (retryAfterMs !== undefined) info.retryAfterMs = retryAfterMs;
	const shouldRetry = parseShouldRetry(headers);
	if (shouldRetry !== undefined) info.shouldRetry = shouldRetry;
	return info;
}
