// Acceptance test of a wrong limit: the overload scenario's load with the provider's real limit 30%
// below the pool's configured one, which tollbooth must learn from the provider's rate-limit headers.
import { finish, milliseconds, percent, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { summarize } from "../lib/stats.ts";
import {
	AGING_BOUND_MS,
	allowedIn,
	BURST_SECONDS,
	callerOutcome,
	deadlineCheck,
	deadlineRows,
	HIGH_SHARE,
	MAX_WAIT_MS,
	mixedClasses,
	OVERLOAD_MS,
	OVERLOAD_PER_SECOND,
	okLatency,
	outcomesByClass,
	PROVIDER_LATENCY_MS,
	perSlot,
	runThroughTollbooth,
	SATURATED_FROM_MS,
	spanOf,
	windowOf,
} from "./overload.ts";

/** What the operator configured for the pool (the overload offers 3× this). */
const CONFIGURED = { requestsPerMinute: 600, tokensPerMinute: 100_000 };
/** The provider's real limits: 30% lower (tokens are not binding either way). */
const REAL_SHARE = 0.7;
const REAL = {
	requestsPerMinute: CONFIGURED.requestsPerMinute * REAL_SHARE,
	tokensPerMinute: CONFIGURED.tokensPerMinute * REAL_SHARE,
};
/** Time tollbooth has to learn the real limit before provider 429s count against it. */
const LEARNING_MS = 5_000;

const PROVIDER_429_SHARE_TARGET = 0.02;
const GOODPUT_TARGET = 0.95;

interface PoolView {
	limits?: { requestsPerMinute?: number };
	status?: {
		requests?: { limitPerMinute?: number; capacity?: number };
		inFlight?: number;
		queued?: number;
		pausedUntilMs?: number;
		sinceStart?: Record<string, number>;
		provider?: { state?: string };
	};
}

async function run(): Promise<boolean> {
	const classes = mixedClasses(Math.round((OVERLOAD_PER_SECOND * OVERLOAD_MS) / 1000));
	const through = await runThroughTollbooth({
		label: "wrong-limit",
		pool: CONFIGURED,
		provider: REAL,
		classes,
	});
	const { shots, startedAtMs } = through.overload;
	const { provider, samples } = through;
	const overallShare = provider.rateLimited / Math.max(1, provider.requests);
	const afterLearning = windowOf(samples, startedAtMs, LEARNING_MS, Number.POSITIVE_INFINITY);
	const lateShare = afterLearning.rateLimited / Math.max(1, afterLearning.requests);
	const saturated = windowOf(samples, startedAtMs, SATURATED_FROM_MS, OVERLOAD_MS);
	const allowed = allowedIn(saturated, REAL.requestsPerMinute);
	const goodput = saturated.ok / allowed;
	const passedOn = shots.filter((shot) => callerOutcome(shot) === "provider 429 passed on").length;
	const retried = shots.filter((shot) => Number(shot.headers["x-tollbooth-retries"] ?? 0) > 0);
	const deadline = deadlineCheck(shots, classes);
	const outcomes = outcomesByClass(shots, classes);
	const firstSeconds = perSlot(samples, startedAtMs, 1_000);
	const pool = through.poolAtEnd as PoolView;
	const learned = pool.status?.requests?.limitPerMinute;

	const rows: Row[] = [
		{
			label: "provider 429s per second, first 10 s",
			value: JSON.stringify(firstSeconds.rateLimited.slice(0, 10)),
		},
		{
			label: "provider 429 share, whole run",
			value: `${percent(overallShare, 2)} (${provider.rateLimited} of ${provider.requests})`,
		},
		{
			label: `provider 429 share after ${LEARNING_MS / 1000} s (${spanOf(afterLearning)})`,
			value: `${percent(lateShare, 2)} (${afterLearning.rateLimited} of ${afterLearning.requests})`,
			target: `< ${percent(PROVIDER_429_SHARE_TARGET, 0)}`,
			met: lateShare < PROVIDER_429_SHARE_TARGET,
		},
		{
			label: `goodput ${spanOf(saturated)}`,
			value: `${percent(goodput)} of the real limit (${saturated.ok} of ${Math.round(allowed)})`,
			target: `≥ ${percent(GOODPUT_TARGET, 0)}`,
			met: goodput >= GOODPUT_TARGET,
		},
		{
			label: "callers that saw a provider 429",
			value: String(passedOn),
			target: "0",
			met: passedOn === 0,
		},
		{ label: "answers after a retried provider 429", value: String(retried.length) },
		{ label: "high answers", value: JSON.stringify(outcomes.high) },
		{ label: "low answers", value: JSON.stringify(outcomes.low) },
		{
			label: "high / low p95 (2xx)",
			value: `${milliseconds(okLatency(shots, classes, "high").p95)} / ${milliseconds(okLatency(shots, classes, "low").p95)}`,
		},
		...deadlineRows(deadline),
		{
			label: "pool at the end: requests limit / burst",
			value: `${learned}/min / ${pool.status?.requests?.capacity} (configured ${pool.limits?.requestsPerMinute}, real ${REAL.requestsPerMinute})`,
		},
		{
			label: "pool at the end: in flight, queued",
			value: `${pool.status?.inFlight}, ${pool.status?.queued}`,
			target: "0, 0",
			met: pool.status?.inFlight === 0 && pool.status?.queued === 0,
		},
		{
			label: "pool at the end: breaker, counts since start",
			value: `${pool.status?.provider?.state} ${JSON.stringify(pool.status?.sinceStart)}`,
		},
	];
	const title = `wrong-limit — ${OVERLOAD_PER_SECOND}/s (3× the pool's ${CONFIGURED.requestsPerMinute} RPM) for ${OVERLOAD_MS / 1000} s, ${percent(HIGH_SHARE, 0)} high, into a provider that allows ${REAL.requestsPerMinute} RPM`;

	return finish("wrong-limit", title, rows, {
		setup: {
			configured: CONFIGURED,
			real: REAL,
			burstSeconds: BURST_SECONDS,
			providerLatencyMs: PROVIDER_LATENCY_MS,
			overload: {
				ratePerSecond: OVERLOAD_PER_SECOND,
				durationMs: OVERLOAD_MS,
				highShare: HIGH_SHARE,
			},
			maxWaitMs: MAX_WAIT_MS,
			agingBoundMs: AGING_BOUND_MS,
			learningMs: LEARNING_MS,
			saturatedWindow: `from ${SATURATED_FROM_MS / 1000} s after the load started to its end (${OVERLOAD_MS / 1000} s); goodput is against the real limit`,
		},
		provider,
		providerRateLimitedShare: { overall: overallShare, afterLearning: lateShare },
		afterLearning,
		goodput: { ...saturated, allowed, ofRealLimit: goodput },
		providerPerSecond: firstSeconds,
		providerPer10s: perSlot(samples, startedAtMs, 10_000),
		outcomes,
		latencyMs: {
			high: okLatency(shots, classes, "high"),
			low: okLatency(shots, classes, "low"),
		},
		answersAfterRetry: retried.length,
		retries: summarize(retried.map((shot) => Number(shot.headers["x-tollbooth-retries"]))),
		deadline,
		poolAtEnd: through.poolAtEnd,
	});
}

export const wrongLimit: Scenario = {
	name: "wrong-limit",
	summary: "overload with the provider's real limit 30% below the pool's: 429 share, goodput",
	run,
};
