// Response headers that tell a caller how much room its pool has: OpenAI-style x-ratelimit-*
// (which the SDKs and existing dashboards read) and the IETF RateLimit / RateLimit-Policy fields.
import type { BucketView, RateLimitView } from "../durable/pool.ts";

/** A duration as Go prints it, the format of OpenAI's x-ratelimit-reset-*: 12ms, 1s, 6m0s. */
export function goDuration(ms: number): string {
	const wholeMs = Math.max(0, Math.ceil(ms));
	if (wholeMs < 1000) return `${wholeMs}ms`;
	const minutes = Math.floor(wholeMs / 60_000);
	const seconds = Number(((wholeMs % 60_000) / 1000).toFixed(3));
	return minutes > 0 ? `${minutes}m${seconds}s` : `${seconds}s`;
}

function setBucket(headers: Headers, name: "requests" | "tokens", bucket: BucketView): void {
	headers.set(`x-ratelimit-limit-${name}`, String(Math.floor(bucket.limitPerMinute)));
	headers.set(`x-ratelimit-remaining-${name}`, String(bucket.remaining));
	headers.set(`x-ratelimit-reset-${name}`, goDuration(bucket.resetMs));
}

export function setRateLimitHeaders(headers: Headers, status: RateLimitView): void {
	setBucket(headers, "requests", status.requests);
	setBucket(headers, "tokens", status.tokens);
	const { requests, tokens } = status;
	headers.set(
		"ratelimit-policy",
		`"requests";q=${Math.floor(requests.limitPerMinute)};w=60, "tokens";q=${Math.floor(tokens.limitPerMinute)};w=60`,
	);
	headers.set(
		"ratelimit",
		`"requests";r=${requests.remaining};t=${Math.ceil(requests.resetMs / 1000)}, "tokens";r=${tokens.remaining};t=${Math.ceil(tokens.resetMs / 1000)}`,
	);
}
