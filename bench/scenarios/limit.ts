// Acceptance test of the request path: 3× a provider's request limit offered for a minute must
// reach the provider at its limit, with no provider 429 passed on and no caller left hanging.
import { startMockServer } from "../../scripts/mock-server.ts";
import {
	BENCH_GATEWAY_KEY,
	BENCH_PROVIDER_KEY,
	SMALL_CHAT_BODY,
	startBenchGateway,
} from "../lib/bench-gateway.ts";
import { runOpenLoop, type Shot } from "../lib/open-loop.ts";
import { finish, milliseconds, percent, type Row } from "../lib/report.ts";
import { type Sample, startSampler } from "../lib/sampler.ts";
import type { Scenario } from "../lib/scenario.ts";
import { countBy, summarize } from "../lib/stats.ts";

/** R: the provider's limit and the pool's, in requests per minute. */
const REQUESTS_PER_MINUTE = 600;
/** Equal on both sides too, but not binding: the load needs ~15,000 tokens a minute. */
const TOKENS_PER_MINUTE = 100_000;
const OFFERED_PER_SECOND = (3 * REQUESTS_PER_MINUTE) / 60;
const LOAD_MS = 60_000;
const PROVIDER_LATENCY_MS = 500;
/** The pool's 10 s burst is spent within ~5 s at 3× R; the saturated window starts after it. */
const SATURATED_FROM_MS = 10_000;
/** The last caller waits ~110 s (1,100 queued ahead of it at 10/s): both bounds leave room. */
const MAX_WAIT_MS = 150_000;
const MAX_QUEUE_LENGTH = 2_000;
const CALLER_TIMEOUT_MS = MAX_WAIT_MS + 20_000;
const SAMPLE_EVERY_MS = 200;
const PROGRESS_EVERY_MS = 10_000;

const PROVIDER_429_SHARE_TARGET = 0.005;
const UTILIZATION_TARGET = 0.95;

type CallerAnswer =
	| "ok"
	| "provider 429 passed on"
	| "tollbooth 429"
	| "tollbooth 503"
	| "other status"
	| "cut off";

/** A provider 429 reaches a caller as tollbooth's "kept rate limiting" or as the mock's own body. */
function callerAnswer(shot: Shot): CallerAnswer {
	if (shot.status === undefined) return "cut off";
	if (shot.status >= 200 && shot.status < 300) return "ok";
	const body = shot.errorBody ?? "";
	if (shot.status === 429 && /provider kept rate limiting|Rate limit reached for/.test(body)) {
		return "provider 429 passed on";
	}
	if (shot.status === 429) return "tollbooth 429";
	if (shot.status === 503) return "tollbooth 503";
	return "other status";
}

interface Utilization {
	windowStartMs: number;
	windowEndMs: number;
	successes: number;
	perMinute: number;
	ofLimit: number;
}

/** Provider successes per minute between two samples, as a share of R. */
function utilization(from: Sample<number>, to: Sample<number>, originMs: number): Utilization {
	const successes = to.value - from.value;
	const perMinute = (successes * 60_000) / Math.max(1, to.atMs - from.atMs);
	return {
		windowStartMs: Math.round(from.atMs - originMs),
		windowEndMs: Math.round(to.atMs - originMs),
		successes,
		perMinute,
		ofLimit: perMinute / REQUESTS_PER_MINUTE,
	};
}

/** Provider successes in each 10 s of the run, for the report's timeline. */
function successesPerTenSeconds(samples: Sample<number>[], originMs: number): number[] {
	const perSlot: number[] = [];
	let previous = samples[0]?.value ?? 0;
	for (const sample of samples) {
		const slot = Math.max(0, Math.floor((sample.atMs - originMs) / 10_000));
		perSlot[slot] = (perSlot[slot] ?? 0) + sample.value - previous;
		previous = sample.value;
	}
	return Array.from(perSlot, (count) => count ?? 0);
}

async function run(): Promise<boolean> {
	// The provider's buckets hold exactly what tollbooth's do (10 s' worth), so any overshoot by
	// tollbooth would show as provider 429s instead of hiding in a minute-deep provider bucket.
	const mock = await startMockServer({
		requestsPerMinute: REQUESTS_PER_MINUTE,
		tokensPerMinute: TOKENS_PER_MINUTE,
		burstSeconds: 10,
		latencyMs: PROVIDER_LATENCY_MS,
		apiKey: BENCH_PROVIDER_KEY,
	});
	const gateway = await startBenchGateway([
		{
			name: "openai",
			provider: "openai",
			baseUrl: `${mock.url}/openai/v1`,
			limits: {
				requestsPerMinute: REQUESTS_PER_MINUTE,
				tokensPerMinute: TOKENS_PER_MINUTE,
				// The mock's 10 s, not the default whole minute: the same bucket on both sides.
				burstTokens: (TOKENS_PER_MINUTE * 10) / 60,
				maxConcurrent: 64,
			},
			maxWaitMs: MAX_WAIT_MS,
			maxQueueLength: MAX_QUEUE_LENGTH,
		},
	]).catch(async (error: unknown) => {
		await mock.close();
		throw error;
	});
	console.log(
		`limit: ${OFFERED_PER_SECOND}/s for ${LOAD_MS / 1000} s into a pool and a provider of ${REQUESTS_PER_MINUTE} RPM (gateway ${gateway.origin}, mock ${mock.url})`,
	);

	const maxSamples = Math.ceil((LOAD_MS + CALLER_TIMEOUT_MS) / SAMPLE_EVERY_MS) + 10;
	const providerSuccesses = startSampler(
		() => mock.provider.stats().ok,
		SAMPLE_EVERY_MS,
		maxSamples,
	);
	const loadStartedMs = performance.now();
	let answered = 0;
	const progress = setInterval(() => {
		const stats = mock.provider.stats();
		const seconds = Math.round((performance.now() - loadStartedMs) / 1000);
		console.log(
			`  t=${seconds}s answered ${answered}, provider ok ${stats.ok}, provider 429 ${stats.rateLimited}`,
		);
	}, PROGRESS_EVERY_MS);

	let result: Awaited<ReturnType<typeof runOpenLoop>>;
	try {
		result = await runOpenLoop({
			ratePerSecond: OFFERED_PER_SECOND,
			durationMs: LOAD_MS,
			timeoutMs: CALLER_TIMEOUT_MS,
			keepHeaders: ["retry-after", "x-tollbooth-queue-ms", "x-tollbooth-retries"],
			request: () =>
				new Request(`${gateway.origin}/openai/v1/chat/completions`, {
					method: "POST",
					headers: {
						authorization: `Bearer ${BENCH_GATEWAY_KEY}`,
						"content-type": "application/json",
					},
					body: SMALL_CHAT_BODY,
				}),
			onShot: () => {
				answered += 1;
			},
		});
	} finally {
		clearInterval(progress);
		providerSuccesses.stop();
		await gateway.stop();
		await mock.close();
	}

	const { shots, startedAtMs } = result;
	const provider = mock.provider.stats();
	const samples = providerSuccesses.samples;
	const finalSuccesses = samples.at(-1)?.value ?? 0;
	// The queue has emptied by the first sample that shows the provider's last success.
	const lastSuccess = samples.find((sample) => sample.value === finalSuccesses) ?? samples.at(-1);
	const saturatedStart = samples.find((sample) => sample.atMs >= startedAtMs + SATURATED_FROM_MS);
	const first = samples[0];
	if (!lastSuccess || !saturatedStart || !first) throw new Error("limit: too few samples taken");
	const saturated = utilization(saturatedStart, lastSuccess, startedAtMs);
	const wholeRun = utilization({ atMs: startedAtMs, value: first.value }, lastSuccess, startedAtMs);

	const answers = countBy(shots, callerAnswer);
	const byStatus = countBy(shots, (shot) => String(shot.status ?? "none"));
	const cutOff = answers["cut off"] ?? 0;
	const providerPassedOn = answers["provider 429 passed on"] ?? 0;
	const sheds = shots.filter((shot) => shot.status === 429 || shot.status === 503);
	const shedsWithoutRetryAfter = sheds.filter((shot) => !shot.headers["retry-after"]).length;
	const retried = shots.filter((shot) => Number(shot.headers["x-tollbooth-retries"] ?? 0) > 0);
	const providerRateLimitedShare = provider.rateLimited / Math.max(1, provider.requests);
	const answeredShots = shots.filter((shot) => shot.status !== undefined);
	const latency = summarize(answeredShots.map((shot) => shot.endMs - shot.sentMs));
	const queueMs = summarize(
		shots.flatMap((shot) => {
			const value = shot.headers["x-tollbooth-queue-ms"];
			return value === undefined ? [] : [Number(value)];
		}),
	);
	const sendLag = summarize(shots.map((shot) => shot.sentMs - shot.dueMs));
	const runMs = Math.max(...shots.map((shot) => shot.endMs));

	const rows: Row[] = [
		{ label: "requests offered", value: `${result.offered} (${OFFERED_PER_SECOND}/s)` },
		{ label: "caller answers by status", value: JSON.stringify(byStatus) },
		{
			label: "callers answered 2xx",
			value: `${answers.ok ?? 0}/${result.offered}`,
			target: "all (the queue is long enough)",
			met: (answers.ok ?? 0) === result.offered,
		},
		{ label: "callers cut off (no answer)", value: String(cutOff), target: "0", met: cutOff === 0 },
		{ label: "tollbooth 429/503 (shed)", value: String(sheds.length - providerPassedOn) },
		{
			label: "  of which without retry-after",
			value: String(shedsWithoutRetryAfter),
			target: "0",
			met: shedsWithoutRetryAfter === 0,
		},
		{
			label: "callers that saw a provider 429",
			value: String(providerPassedOn),
			target: "0",
			met: providerPassedOn === 0,
		},
		{ label: "answers after a retried provider 429", value: String(retried.length) },
		{ label: "provider answers by status", value: JSON.stringify(provider.byStatus) },
		{
			label: "provider 429 share",
			value: percent(providerRateLimitedShare, 2),
			target: `< ${percent(PROVIDER_429_SHARE_TARGET)}`,
			met: providerRateLimitedShare < PROVIDER_429_SHARE_TARGET,
		},
		{
			label: `utilization, saturated (${saturated.windowStartMs / 1000}–${saturated.windowEndMs / 1000} s)`,
			value: `${percent(saturated.ofLimit)} (${saturated.perMinute.toFixed(1)}/min)`,
			target: `≥ ${percent(UTILIZATION_TARGET, 0)}`,
			met: saturated.ofLimit >= UTILIZATION_TARGET,
		},
		{
			label: `utilization, whole run (0–${wholeRun.windowEndMs / 1000} s)`,
			value: `${percent(wholeRun.ofLimit)} (${wholeRun.perMinute.toFixed(1)}/min)`,
		},
		{ label: "caller latency p50", value: milliseconds(latency.p50) },
		{ label: "caller latency p95", value: milliseconds(latency.p95) },
		{ label: "caller latency max", value: milliseconds(latency.max) },
		{ label: "tollbooth queue p50 / p95", value: `${queueMs.p50} / ${queueMs.p95} ms` },
		{ label: "send lag behind schedule p99", value: milliseconds(sendLag.p99) },
		{ label: "load + drain time", value: `${(runMs / 1000).toFixed(1)} s` },
	];

	return finish("limit", "limit — 3× R offered for 60 s, then drained", rows, {
		setup: {
			requestsPerMinute: REQUESTS_PER_MINUTE,
			tokensPerMinute: TOKENS_PER_MINUTE,
			burst:
				"10 s' worth (requests: the default; tokens: set): 100 requests, 16,667 tokens; the mock provider's buckets hold the same",
			offeredPerSecond: OFFERED_PER_SECOND,
			loadMs: LOAD_MS,
			providerLatencyMs: PROVIDER_LATENCY_MS,
			maxWaitMs: MAX_WAIT_MS,
			maxQueueLength: MAX_QUEUE_LENGTH,
			callerTimeoutMs: CALLER_TIMEOUT_MS,
			saturatedWindow: `from ${SATURATED_FROM_MS / 1000} s after the load started to the first ${SAMPLE_EVERY_MS} ms sample showing the provider's last success`,
		},
		offered: result.offered,
		callerAnswers: answers,
		callerStatuses: byStatus,
		callerErrors: countBy(
			shots.filter((shot) => shot.errorBody !== undefined),
			(shot) => `${shot.status} ${shot.errorBody}`,
		),
		shedsWithoutRetryAfter,
		answersAfterRetry: retried.length,
		provider,
		providerRateLimitedShare,
		utilization: { saturated, wholeRun },
		providerSuccessesPer10s: successesPerTenSeconds(samples, startedAtMs),
		latencyMs: latency,
		queueMs,
		sendLagMs: sendLag,
		runMs,
		shots: shots.map(({ index, dueMs, sentMs, endMs, status, cutOff, detail, headers }) => ({
			index,
			dueMs: Math.round(dueMs),
			sentMs: Math.round(sentMs),
			endMs: Math.round(endMs),
			status,
			cutOff,
			detail,
			queueMs: headers["x-tollbooth-queue-ms"],
		})),
	});
}

export const limit: Scenario = {
	name: "limit",
	summary: "3× the provider's RPM for 60 s: provider 429s, utilization, no hung caller",
	run,
};
