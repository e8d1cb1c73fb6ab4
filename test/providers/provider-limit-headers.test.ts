// Rate-limit and retry headers of both providers, from real header sets and the SDKs' test vectors.

import { describe, expect, it } from "vitest";
import { providerFor } from "../../src/providers/index.ts";
import anthropicErrorsRecorded from "../fixtures/providers/anthropic/errors_recorded.json";
import anthropicHeaders from "../fixtures/providers/anthropic/headers_ratelimit.json";
import anthropicToolUseExchange from "../fixtures/providers/anthropic/message_tool_use_with_ratelimit_headers.json";
import openaiHeaders from "../fixtures/providers/openai/headers_ratelimit.json";
import retryVectors from "../fixtures/providers/retry/sdk_retry_vectors.json";

const openai = providerFor("openai");
const anthropic = providerFor("anthropic");
const NOW_MS = Date.parse("2026-02-25T20:02:31Z");

/** A fixture's header object (whose JSON type has optional keys) as a plain header record. */
function stringRecord(headers: object): Record<string, string> {
	return Object.fromEntries(Object.entries(headers));
}

describe("openai x-ratelimit-* headers", () => {
	it("docs sample", () => {
		expect(
			openai.parseRateLimitHeaders(new Headers(openaiHeaders.docs_sample_values.headers), NOW_MS),
		).toEqual({
			requests: { limit: 60, remaining: 59, resetMs: 1_000 },
			tokens: { limit: 150_000, remaining: 149_984, resetMs: 360_000 },
		});
	});

	it("observed 200 with *_usage_based extras", () => {
		const headers = new Headers(openaiHeaders.observed_200_chat_completions_2025.headers);
		expect(openai.parseRateLimitHeaders(headers, NOW_MS)).toEqual({
			requests: { limit: 5_000, remaining: 4_999, resetMs: 12 },
			tokens: { limit: 160_000, remaining: 159_976, resetMs: 9 },
		});
	});

	it("observed 2024 gpt-4o", () => {
		const headers = new Headers(openaiHeaders.observed_2024_gpt4o.headers);
		expect(openai.parseRateLimitHeaders(headers, NOW_MS)).toEqual({
			requests: { limit: 500, remaining: 499, resetMs: 120 },
			tokens: { limit: 30_000, remaining: 29_996, resetMs: 8 },
		});
	});

	it("a real 429 with no rate-limit or retry headers gives nothing", () => {
		const headers = new Headers(openaiHeaders.observed_429_responses_api_2025.headers);
		expect(openai.parseRateLimitHeaders(headers, NOW_MS)).toEqual({});
	});

	const durationMs: Record<string, number> = {
		"1s": 1_000,
		"6m0s": 360_000,
		"12ms": 12,
		"9ms": 9,
		"120ms": 120,
		"8ms": 8,
		"1m9.696s": 69_696,
		"1m30.5s": 90_500,
	};
	it("the fixture's duration formats are all covered", () => {
		const values = openaiHeaders.reset_duration_format_examples.values.map(
			(example) => example.value,
		);
		expect(Object.keys(durationMs).sort()).toEqual([...values].sort());
	});

	it.each([
		...Object.entries(durationMs),
		["0", 0],
		["2h0m0s", 7_200_000],
		["1.5h", 5_400_000],
		["500us", 0.5],
	])("reset %s is %d ms", (value, expectedMs) => {
		const info = openai.parseRateLimitHeaders(
			new Headers({ "x-ratelimit-reset-tokens": value }),
			NOW_MS,
		);
		expect(info.tokens?.resetMs).toBeCloseTo(expectedMs, 6);
	});

	it.each([
		"",
		" ",
		"abc",
		"-1s",
		"1",
		"1.s",
		"s",
		"NaN",
		"inf",
		"1x",
		"1s garbage",
		"1s-2s",
		"9999999h",
	])("malformed reset %j is left out", (value) => {
		const headers = new Headers({
			"x-ratelimit-reset-requests": value,
			"x-ratelimit-limit-requests": "10",
		});
		expect(openai.parseRateLimitHeaders(headers, NOW_MS)).toEqual({ requests: { limit: 10 } });
	});

	it.each(["", "-5", "1e3", "12.5", "NaN", "inf", "ten", "99999999999999999999"])(
		"malformed count %j is left out",
		(value) => {
			const headers = new Headers({
				"x-ratelimit-limit-tokens": value,
				"x-ratelimit-remaining-tokens": value,
			});
			expect(openai.parseRateLimitHeaders(headers, NOW_MS)).toEqual({});
		},
	);
});

describe("retry-after, retry-after-ms, x-ms-retry-after-ms", () => {
	const vectors = retryVectors.openai_python_parse_retry_after;
	const vectorsNowMs = vectors.fixed_now_unix * 1_000;
	// What each retry-after value in the SDK vectors means as a server-directed delay. Whether to
	// honour a long delay is policy (the SDKs cap at 60 or 120 s); the parser reports it.
	const expectedMs: Record<string, number | undefined> = {
		"20": 20_000,
		"0": 0,
		"-10": undefined,
		"60": 60_000,
		"61": 61_000,
		"120": 120_000,
		"121": 121_000,
		"Fri, 29 Sep 2023 16:26:57 GMT": 20_000,
		"Fri, 29 Sep 2023 16:26:37 GMT": 0,
		"Fri, 29 Sep 2023 16:26:27 GMT": 0, // already past
		"Fri, 29 Sep 2023 16:27:37 GMT": 60_000,
		"Fri, 29 Sep 2023 16:27:38 GMT": 61_000,
		"Fri, 29 Sep 2023 16:28:37 GMT": 120_000,
		"Fri, 29 Sep 2023 16:28:38 GMT": 121_000,
		"99999999999999999999999999999999999": undefined,
		inf: undefined,
		nan: undefined,
		"Zun, 29 Sep 2023 16:26:27 GMT": undefined,
		"Fri, 29 Sep 100000 16:26:57 GMT": undefined,
		"": undefined,
	};

	it("covers every retry-after value of both Python SDKs' vectors", () => {
		const values = [...vectors.cases, ...retryVectors.anthropic_python_parse_retry_after.cases].map(
			(c) => c.retry_after,
		);
		expect(values.filter((value) => !(value in expectedMs))).toEqual([]);
	});

	it.each(Object.entries(expectedMs))("retry-after %j", (value, retryAfterMs) => {
		const info = openai.parseRateLimitHeaders(new Headers({ "retry-after": value }), vectorsNowMs);
		expect(info.retryAfterMs).toBe(retryAfterMs);
	});

	it.each(retryVectors.openai_python_should_retry_max_delay.cases)(
		"max-delay vector $headers",
		({ headers }) => {
			const sent = stringRecord(headers);
			const info = openai.parseRateLimitHeaders(new Headers(sent), vectorsNowMs);
			const retryAfterMs = sent["retry-after-ms"];
			expect(info.retryAfterMs).toBe(
				retryAfterMs === undefined ? expectedMs[sent["retry-after"] ?? ""] : Number(retryAfterMs),
			);
		},
	);

	it("retry-after-ms wins over retry-after, even when it is 0 (openai-node vector)", () => {
		const headers = new Headers(retryVectors.openai_node_retry_after_ms_precedence.headers);
		expect(openai.parseRateLimitHeaders(headers, vectorsNowMs).retryAfterMs).toBe(0);
	});

	it.each([
		[{ "retry-after-ms": "1500.5" }, 1_500.5],
		[{ "retry-after-ms": "250", "retry-after": "3" }, 250],
		[{ "retry-after-ms": "abc", "retry-after": "3" }, 3_000],
		[{ "retry-after-ms": "-1", "retry-after": "3" }, 3_000],
		[{ "x-ms-retry-after-ms": "750" }, 750],
		[{ "x-ms-retry-after-ms": "750", "retry-after": "33" }, 750],
		[{ "retry-after-ms": "100", "x-ms-retry-after-ms": "750" }, 100],
		[{ "retry-after": "1.5" }, 1_500],
		[{ "Retry-After": " 7 " }, 7_000],
		[{ "retry-after-ms": "Infinity" }, undefined],
		[{ "retry-after-ms": "NaN" }, undefined],
		[{ "retry-after": "86401" }, undefined],
	])("%j gives %s ms", (headers, retryAfterMs) => {
		expect(openai.parseRateLimitHeaders(new Headers(headers), NOW_MS).retryAfterMs).toBe(
			retryAfterMs,
		);
	});
});

describe("x-should-retry", () => {
	it.each(retryVectors.openai_node_status_retry_table.cases)(
		"status $status with $headers",
		({ headers }) => {
			const sent = stringRecord(headers);
			const info = openai.parseRateLimitHeaders(new Headers(sent), NOW_MS);
			const verdict = sent["x-should-retry"];
			expect(info.shouldRetry).toBe(verdict === undefined ? undefined : verdict === "true");
		},
	);

	it.each([
		["TRUE", true],
		[" false ", false],
		["yes", undefined],
		["", undefined],
	])("%j is %s", (value, shouldRetry) => {
		const info = anthropic.parseRateLimitHeaders(new Headers({ "x-should-retry": value }), NOW_MS);
		expect(info.shouldRetry).toBe(shouldRetry);
	});

	it("recorded anthropic 429 and 400: verdict only, no delay, no windows", () => {
		const tooMany = anthropicErrorsRecorded["429_rate_limit_error_no_retry_after"].headers;
		const invalid = anthropicErrorsRecorded["400_invalid_request_error"].headers;
		expect(anthropic.parseRateLimitHeaders(new Headers(tooMany), NOW_MS)).toEqual({
			shouldRetry: true,
		});
		expect(anthropic.parseRateLimitHeaders(new Headers(invalid), NOW_MS)).toEqual({
			shouldRetry: false,
		});
	});
});

describe("anthropic anthropic-ratelimit-* headers", () => {
	it("recorded 200: all four windows, resets as time from now", () => {
		const headers = new Headers(anthropicHeaders.recorded_200_2026.headers);
		expect(anthropic.parseRateLimitHeaders(headers, NOW_MS)).toEqual({
			requests: { limit: 50, remaining: 49, resetMs: 1_000 },
			tokens: { limit: 38_000, remaining: 36_000, resetMs: 5_000 },
			inputTokens: { limit: 30_000, remaining: 28_000, resetMs: 6_000 },
			outputTokens: { limit: 8_000, remaining: 8_000, resetMs: 5_000 },
		});
	});

	it("the recorded tool-use exchange's headers parse the same", () => {
		const headers = new Headers(anthropicToolUseExchange.headers);
		expect(anthropic.parseRateLimitHeaders(headers, NOW_MS)).toEqual(
			anthropic.parseRateLimitHeaders(
				new Headers(anthropicHeaders.recorded_200_2026.headers),
				NOW_MS,
			),
		);
	});

	it("observed 429: retry-after, no input tokens left, retry verdict", () => {
		const headers = new Headers(anthropicHeaders.observed_429_2025_with_retry_after.headers);
		const info = anthropic.parseRateLimitHeaders(headers, Date.parse("2025-06-02T15:14:30Z"));
		expect(info).toEqual({
			requests: { limit: 4_000, remaining: 4_000, resetMs: 15_000 },
			tokens: { limit: 280_000, remaining: 80_000, resetMs: 15_000 },
			inputTokens: { limit: 200_000, remaining: 0, resetMs: 78_000 },
			outputTokens: { limit: 80_000, remaining: 80_000, resetMs: 15_000 },
			retryAfterMs: 16_000,
			shouldRetry: true,
		});
	});

	it("2024 429 without retry-after: windows and verdict, no delay", () => {
		const headers = new Headers(anthropicHeaders.observed_429_2024_without_retry_after.headers);
		const info = anthropic.parseRateLimitHeaders(headers, Date.parse("2024-03-26T19:59:59Z"));
		expect(info.retryAfterMs).toBeUndefined();
		expect(info.shouldRetry).toBe(true);
		expect(info.requests).toEqual({ limit: 5, remaining: 0, resetMs: 1_000 });
	});

	it("a reset already past is 0 ms away", () => {
		const headers = new Headers({ "anthropic-ratelimit-requests-reset": "2026-02-25T20:00:00Z" });
		expect(anthropic.parseRateLimitHeaders(headers, NOW_MS)).toEqual({ requests: { resetMs: 0 } });
	});

	it("offsets and fractional seconds are understood", () => {
		const headers = new Headers({
			"anthropic-ratelimit-tokens-reset": "2026-02-25T21:02:32.500+01:00",
		});
		expect(anthropic.parseRateLimitHeaders(headers, NOW_MS).tokens).toEqual({ resetMs: 1_500 });
	});

	it.each([
		"",
		"tomorrow",
		"2026-02-25",
		"2026-02-25 20:02:37",
		"1s",
		"Wed, 25 Feb 2026 20:02:37 GMT",
		"2026-13-45T99:99:99Z",
	])("malformed reset %j is left out", (value) => {
		const headers = new Headers({
			"anthropic-ratelimit-output-tokens-reset": value,
			"anthropic-ratelimit-output-tokens-remaining": "7",
		});
		expect(anthropic.parseRateLimitHeaders(headers, NOW_MS)).toEqual({
			outputTokens: { remaining: 7 },
		});
	});

	it("anthropic reads OpenAI-style retry headers too, and openai ignores anthropic windows", () => {
		const headers = new Headers({
			"retry-after-ms": "300",
			"anthropic-ratelimit-requests-limit": "5",
		});
		expect(anthropic.parseRateLimitHeaders(headers, NOW_MS)).toEqual({
			requests: { limit: 5 },
			retryAfterMs: 300,
		});
		expect(openai.parseRateLimitHeaders(headers, NOW_MS)).toEqual({ retryAfterMs: 300 });
	});
});
