// Acceptance test of the priority queue under overload: 3× a pool's limit for a minute, 20% high and
// 80% low, then the same arrivals straight to the provider by clients that retry with backoff.
import { type MockServer, startMockServer } from "../../scripts/mock-server.ts";
import type { MockStats } from "../../src/mock/provider.ts";
import {
	BENCH_GATEWAY_KEY,
	BENCH_PROVIDER_KEY,
	readAdmin,
	SMALL_CHAT_BODY,
	startBenchGateway,
} from "../lib/bench-gateway.ts";
import { type OpenLoopRun, runArrivals, runOpenLoop, type Shot } from "../lib/open-loop.ts";
import { seededRandom } from "../lib/random.ts";
import { milliseconds, percent, printTable, type Row, saveReport } from "../lib/report.ts";
import { type Sample, startSampler } from "../lib/sampler.ts";
import type { Scenario } from "../lib/scenario.ts";
import { countBy, type Summary, summarize } from "../lib/stats.ts";

/** R: the pool's limit and the provider's, in requests per minute. */
const REQUESTS_PER_MINUTE = 600;
/** Not binding: the load needs ~12,000 tokens a minute at R. */
const TOKENS_PER_MINUTE = 100_000;
/** The pool's bursts are 10 s of each limit (requests: the default; tokens: set); the provider's hold the same. */
export const BURST_SECONDS = 10;
/**
 * The provider's fixed latency for the baseline and for wrong-limit. The overload runs at each of
 * OVERLOAD_LATENCIES_MS: a fast provider (150 ms) shows what a wait for a refill costs high, which
 * a slow one dilutes.
 */
export const PROVIDER_LATENCY_MS = 500;
const OVERLOAD_LATENCIES_MS = [150, 500];
/** Three times R, whatever the answers do (open loop). */
export const OVERLOAD_PER_SECOND = (3 * REQUESTS_PER_MINUTE) / 60;
export const OVERLOAD_MS = 60_000;
export const HIGH_SHARE = 0.2;
/** The high-only reference phase before the overload, well under R. */
const UNLOADED_PER_SECOND = 4;
const UNLOADED_MS = 10_000;
/** The pool's burst is spent within ~5 s at 3× R: the saturated window runs from here to the end. */
export const SATURATED_FROM_MS = 10_000;
/** An answer may come this much after the caller's max wait plus the provider's latency. */
export const DEADLINE_MARGIN_MS = 1_000;

const HIGH_P95_FACTOR_TARGET = 1.25;
const GOODPUT_TARGET = 0.99;
const PROVIDER_429_SHARE_TARGET = 0.005;
/** A refused caller is told "at once" within this of arriving... */
const TOLD_AT_ONCE_MS = 100;
/** ...and at least this share of refused callers must be. */
const TOLD_AT_ONCE_SHARE_TARGET = 0.95;

const SAMPLE_EVERY_MS = 200;
const PROGRESS_EVERY_MS = 10_000;

/** The baseline clients: 1 s × 2^(n−1) capped at 32 s, full jitter, at most 6 retries. */
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_CAP_MS = 32_000;
const MAX_RETRIES = 6;
/** The SDKs honour a retry-after only up to a minute. */
const RETRY_AFTER_HONOURED_MS = 60_000;

export type PriorityClass = "high" | "low";

/** What each class sends as x-max-wait-ms; the pool's maxWaitMs for it is the same. */
export const MAX_WAIT_MS: Record<PriorityClass, number> = { high: 10_000, low: 30_000 };
/**
 * A waiter rises one class every agingBound / 3 = 30 s, so a low one would reach high after 60 s:
 * never within its 30 s. Below 67.5 s, aged low waiters would queue ahead of fresh high ones.
 */
export const AGING_BOUND_MS = 90_000;
const MAX_QUEUE_LENGTH = 2_000;
/** A caller without an answer by then is cut off: it was left hanging. */
const CALLER_TIMEOUT_MS = MAX_WAIT_MS.low + 30_000;
const POOL = "openai";

/** The class of each of `count` callers, high with probability HIGH_SHARE; the same every run. */
export function mixedClasses(count: number, seed = 1): PriorityClass[] {
	const random = seededRandom(seed);
	return Array.from({ length: count }, () => (random() < HIGH_SHARE ? "high" : "low"));
}

export type CallerOutcome =
	| "ok"
	| "refused at once"
	| "expired in queue"
	| "queue full"
	| "shed"
	| "provider 429 passed on"
	| "other 429/503"
	| "other status"
	| "cut off";

/** What a caller was told, from tollbooth's status and message (or the mock's own 429 body). */
export function callerOutcome(shot: Shot): CallerOutcome {
	if (shot.status === undefined) return "cut off";
	if (shot.status >= 200 && shot.status < 300) return "ok";
	const body = shot.errorBody ?? "";
	if (shot.status === 429 && /provider kept rate limiting|Rate limit reached for/.test(body)) {
		return "provider 429 passed on";
	}
	if (shot.status === 429 && /estimated wait of/.test(body)) return "refused at once";
	if (shot.status === 429 && /reached its deadline/.test(body)) return "expired in queue";
	if (shot.status === 503 && /queue .* is full/.test(body)) return "queue full";
	if (shot.status === 503 && /gave its place/.test(body)) return "shed";
	if (shot.status === 429 || shot.status === 503) return "other 429/503";
	return "other status";
}

/** The provider's counters, as sampled through a run. */
export interface ProviderCounts {
	requests: number;
	ok: number;
	rateLimited: number;
}

export interface Window extends ProviderCounts {
	fromMs: number;
	toMs: number;
	okPerMinute: number;
}

/** What the provider counted between the first sample at or after fromMs and the last at or before toMs (ms since originMs). */
export function windowOf(
	samples: readonly Sample<ProviderCounts>[],
	originMs: number,
	fromMs: number,
	toMs: number,
): Window {
	const first = samples.find((sample) => sample.atMs >= originMs + fromMs);
	const last = samples.findLast((sample) => sample.atMs <= originMs + toMs);
	if (!first || !last || last.atMs <= first.atMs) throw new Error("too few samples taken");
	const ok = last.value.ok - first.value.ok;
	return {
		fromMs: Math.round(first.atMs - originMs),
		toMs: Math.round(last.atMs - originMs),
		requests: last.value.requests - first.value.requests,
		ok,
		rateLimited: last.value.rateLimited - first.value.rateLimited,
		okPerMinute: (ok * 60_000) / (last.atMs - first.atMs),
	};
}

/** What the provider's limit allowed in a window: perMinute × its length. */
export function allowedIn(window: Window, perMinute: number): number {
	return (perMinute * (window.toMs - window.fromMs)) / 60_000;
}

/** "10.2–59.9 s" */
export function spanOf(window: Window): string {
	return `${(window.fromMs / 1000).toFixed(1)}–${(window.toMs / 1000).toFixed(1)} s`;
}

/** The provider's successes and 429s in each slot of slotMs from originMs, for the timeline. */
export function perSlot(
	samples: readonly Sample<ProviderCounts>[],
	originMs: number,
	slotMs: number,
): { ok: number[]; rateLimited: number[] } {
	const ok: number[] = [];
	const rateLimited: number[] = [];
	let previous = samples[0]?.value ?? { requests: 0, ok: 0, rateLimited: 0 };
	for (const sample of samples) {
		const slot = Math.max(0, Math.floor((sample.atMs - originMs) / slotMs));
		ok[slot] = (ok[slot] ?? 0) + sample.value.ok - previous.ok;
		rateLimited[slot] = (rateLimited[slot] ?? 0) + sample.value.rateLimited - previous.rateLimited;
		previous = sample.value;
	}
	return {
		ok: Array.from(ok, (count) => count ?? 0),
		rateLimited: Array.from(rateLimited, (n) => n ?? 0),
	};
}

function countsOf(mock: MockServer): ProviderCounts {
	const { requests, ok, rateLimited } = mock.provider.stats();
	return { requests, ok, rateLimited };
}

/** A line every PROGRESS_EVERY_MS while load runs; returns the function that stops it. */
function startProgress(label: string, mock: MockServer, answered: () => number): () => void {
	const startedMs = performance.now();
	const timer = setInterval(() => {
		const stats = mock.provider.stats();
		const seconds = Math.round((performance.now() - startedMs) / 1000);
		console.log(
			`  ${label} t=${seconds}s answered ${answered()}, provider ok ${stats.ok}, provider 429 ${stats.rateLimited}`,
		);
	}, PROGRESS_EVERY_MS);
	return () => clearInterval(timer);
}

export interface TollboothRunOptions {
	label: string;
	/** The pool's configured limits. */
	pool: { requestsPerMinute: number; tokensPerMinute: number };
	/** The limits the mock provider really enforces. */
	provider: { requestsPerMinute: number; tokensPerMinute: number };
	/** One per caller of the overload, in arrival order. */
	classes: readonly PriorityClass[];
	/** A high-only phase before the overload, for the unloaded latency. */
	unloaded?: { ratePerSecond: number; durationMs: number };
	/** The provider's latency (default PROVIDER_LATENCY_MS). */
	latencyMs?: number;
}

export interface TollboothRun {
	unloaded: Shot[];
	overload: OpenLoopRun;
	samples: Sample<ProviderCounts>[];
	provider: MockStats;
	/** GET /admin/pools/<pool> once every caller was answered. */
	poolAtEnd: unknown;
}

/** The mock provider and tollbooth in front of it, the optional unloaded phase, then the overload. */
export async function runThroughTollbooth(options: TollboothRunOptions): Promise<TollboothRun> {
	const mock = await startMockServer({
		...options.provider,
		burstSeconds: BURST_SECONDS,
		latencyMs: options.latencyMs ?? PROVIDER_LATENCY_MS,
		apiKey: BENCH_PROVIDER_KEY,
	});
	const gateway = await startBenchGateway([
		{
			name: POOL,
			provider: "openai",
			baseUrl: `${mock.url}/openai/v1`,
			limits: {
				...options.pool,
				burstTokens: (options.pool.tokensPerMinute * BURST_SECONDS) / 60,
				maxConcurrent: 64,
			},
			maxWaitMs: MAX_WAIT_MS,
			maxQueueLength: MAX_QUEUE_LENGTH,
			agingBoundMs: AGING_BOUND_MS,
		},
	]).catch(async (error: unknown) => {
		await mock.close();
		throw error;
	});
	const request = (priority: PriorityClass) =>
		new Request(`${gateway.origin}/${POOL}/v1/chat/completions`, {
			method: "POST",
			headers: {
				authorization: `Bearer ${BENCH_GATEWAY_KEY}`,
				"content-type": "application/json",
				"x-priority": priority,
				"x-max-wait-ms": String(MAX_WAIT_MS[priority]),
			},
			body: SMALL_CHAT_BODY,
		});
	const keepHeaders = ["retry-after", "x-tollbooth-queue-ms", "x-tollbooth-retries"];
	const offered = options.classes.length;
	const durationMs = (offered / OVERLOAD_PER_SECOND) * 1000;
	const maxSamples = Math.ceil((durationMs + CALLER_TIMEOUT_MS) / SAMPLE_EVERY_MS) + 10;
	console.log(
		`${options.label}: tollbooth ${gateway.origin} (pool ${options.pool.requestsPerMinute} RPM) in front of mock ${mock.url} (${options.provider.requestsPerMinute} RPM)`,
	);
	try {
		let unloaded: Shot[] = [];
		if (options.unloaded) {
			console.log(
				`  unloaded: ${options.unloaded.ratePerSecond}/s high for ${options.unloaded.durationMs / 1000} s`,
			);
			const reference = await runOpenLoop({
				...options.unloaded,
				timeoutMs: CALLER_TIMEOUT_MS,
				keepHeaders,
				request: () => request("high"),
			});
			unloaded = reference.shots;
		}
		console.log(`  overload: ${OVERLOAD_PER_SECOND}/s for ${durationMs / 1000} s, then drained`);
		const sampler = startSampler(() => countsOf(mock), SAMPLE_EVERY_MS, maxSamples);
		let answered = 0;
		const stopProgress = startProgress("tollbooth", mock, () => answered);
		let overload: OpenLoopRun;
		try {
			overload = await runOpenLoop({
				ratePerSecond: OVERLOAD_PER_SECOND,
				durationMs,
				timeoutMs: CALLER_TIMEOUT_MS,
				keepHeaders,
				request: (index) => request(options.classes[index] ?? "low"),
				onShot: () => {
					answered += 1;
				},
			});
		} finally {
			stopProgress();
			sampler.stop();
		}
		// Leases are released after the answer (waitUntil): give the last ones a moment.
		await new Promise((wait) => setTimeout(wait, 1_000));
		const poolAtEnd = await readAdmin(gateway, `pools/${POOL}`);
		return {
			unloaded,
			overload,
			samples: sampler.samples,
			provider: mock.provider.stats(),
			poolAtEnd,
		};
	} finally {
		await gateway.stop();
		await mock.close();
	}
}

/** Latency of the callers of one class that got a 2xx, whole answer. */
export function okLatency(
	shots: readonly Shot[],
	classes: readonly PriorityClass[],
	priority: PriorityClass,
): Summary {
	return summarize(
		shots
			.filter((shot) => classes[shot.index] === priority && callerOutcome(shot) === "ok")
			.map((shot) => shot.endMs - shot.sentMs),
	);
}

export interface DeadlineCheck {
	/** Cut off (no answer in time), or a 429/503 without retry-after, or another error status. */
	notTold: number;
	/** The latest answer after its caller's max wait plus the provider's latency (may be < 0). */
	worstOverrunMs: number;
	worstIndex: number;
}

/** Every caller must hear yes (2xx) or no (429/503 with retry-after) by its max wait, plus the send. */
export function deadlineCheck(
	shots: readonly Shot[],
	classes: readonly PriorityClass[],
	latencyMs = PROVIDER_LATENCY_MS,
): DeadlineCheck {
	const check: DeadlineCheck = {
		notTold: 0,
		worstOverrunMs: Number.NEGATIVE_INFINITY,
		worstIndex: -1,
	};
	for (const shot of shots) {
		const outcome = callerOutcome(shot);
		const refusal = shot.status === 429 || shot.status === 503;
		if (
			outcome === "cut off" ||
			outcome === "other status" ||
			(refusal && !shot.headers["retry-after"])
		) {
			check.notTold += 1;
		}
		const dueMs = MAX_WAIT_MS[classes[shot.index] ?? "low"] + latencyMs;
		const overrunMs = shot.endMs - shot.sentMs - dueMs;
		if (overrunMs > check.worstOverrunMs) {
			check.worstOverrunMs = overrunMs;
			check.worstIndex = shot.index;
		}
	}
	return check;
}

/** The rows that say whether every caller was answered or told in time. */
export function deadlineRows(deadline: DeadlineCheck): Row[] {
	return [
		{
			label: "callers not told (cut off, no retry-after)",
			value: String(deadline.notTold),
			target: "0",
			met: deadline.notTold === 0,
		},
		{
			label: "worst answer past max wait + latency",
			value: `${milliseconds(deadline.worstOverrunMs)} (caller ${deadline.worstIndex})`,
			target: `≤ ${milliseconds(DEADLINE_MARGIN_MS)}`,
			met: deadline.worstOverrunMs <= DEADLINE_MARGIN_MS,
		},
	];
}

export function outcomesByClass(
	shots: readonly Shot[],
	classes: readonly PriorityClass[],
): Record<PriorityClass, Record<string, number>> {
	const of = (priority: PriorityClass) =>
		countBy(
			shots.filter((shot) => classes[shot.index] === priority),
			callerOutcome,
		);
	return { high: of("high"), low: of("low") };
}

export function queueMs(
	shots: readonly Shot[],
	classes: readonly PriorityClass[],
	priority: PriorityClass,
): Summary {
	return summarize(
		shots.flatMap((shot) => {
			const value = shot.headers["x-tollbooth-queue-ms"];
			return classes[shot.index] === priority && value !== undefined ? [Number(value)] : [];
		}),
	);
}

/** A baseline caller: straight to the provider, retrying its 429s. Times are ms since the run started. */
interface DirectCaller {
	index: number;
	sentMs: number;
	endMs: number;
	sends: number;
	outcome: "ok" | "gave up: retries spent" | "gave up: max wait" | "other status" | "network error";
	status?: number;
}

/** retry-after-ms, else retry-after in seconds, when it is one the SDKs honour (0 < wait ≤ 60 s). */
function retryAfterMs(headers: Headers): number {
	const milliseconds = Number(headers.get("retry-after-ms") ?? Number.NaN);
	const seconds = Number(headers.get("retry-after") ?? Number.NaN) * 1000;
	const wait = Number.isFinite(milliseconds) ? milliseconds : seconds;
	return Number.isFinite(wait) && wait > 0 && wait <= RETRY_AFTER_HONOURED_MS ? wait : 0;
}

/**
 * What a team without tollbooth does: send, and on a 429 wait max(retry-after, uniform(0,
 * min(cap, base × 2^(n−1)))) before retry n; give up after MAX_RETRIES retries, or when the next
 * send would start after the caller's max wait.
 */
async function callDirect(
	url: string,
	priority: PriorityClass,
	index: number,
	startedAtMs: number,
	random: () => number,
): Promise<DirectCaller> {
	const now = () => performance.now() - startedAtMs;
	const caller: DirectCaller = { index, sentMs: now(), endMs: 0, sends: 0, outcome: "ok" };
	const giveUpAtMs = caller.sentMs + MAX_WAIT_MS[priority];
	for (;;) {
		caller.sends += 1;
		let response: Response;
		try {
			response = await fetch(url, {
				method: "POST",
				headers: {
					authorization: `Bearer ${BENCH_PROVIDER_KEY}`,
					"content-type": "application/json",
				},
				body: SMALL_CHAT_BODY,
				signal: AbortSignal.timeout(CALLER_TIMEOUT_MS),
			});
			await response.text();
		} catch {
			return { ...caller, endMs: now(), outcome: "network error" };
		}
		caller.status = response.status;
		if (response.ok) return { ...caller, endMs: now(), outcome: "ok" };
		if (response.status !== 429) return { ...caller, endMs: now(), outcome: "other status" };
		if (caller.sends > MAX_RETRIES)
			return { ...caller, endMs: now(), outcome: "gave up: retries spent" };
		const backoffMs =
			random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (caller.sends - 1));
		const delayMs = Math.max(retryAfterMs(response.headers), backoffMs);
		if (now() + delayMs > giveUpAtMs)
			return { ...caller, endMs: now(), outcome: "gave up: max wait" };
		await new Promise((wait) => setTimeout(wait, delayMs));
	}
}

interface DirectRun {
	startedAtMs: number;
	callers: DirectCaller[];
	samples: Sample<ProviderCounts>[];
	provider: MockStats;
}

/** The same arrivals sent straight to a fresh mock with the same limit, by retrying clients. */
async function runStraightToProvider(classes: readonly PriorityClass[]): Promise<DirectRun> {
	const mock = await startMockServer({
		requestsPerMinute: REQUESTS_PER_MINUTE,
		tokensPerMinute: TOKENS_PER_MINUTE,
		burstSeconds: BURST_SECONDS,
		latencyMs: PROVIDER_LATENCY_MS,
		apiKey: BENCH_PROVIDER_KEY,
	});
	const url = `${mock.url}/openai/v1/chat/completions`;
	const durationMs = (classes.length / OVERLOAD_PER_SECOND) * 1000;
	console.log(
		`  straight to mock ${mock.url}: the same ${OVERLOAD_PER_SECOND}/s for ${durationMs / 1000} s, clients retrying`,
	);
	const random = seededRandom(2);
	const maxSamples = Math.ceil((durationMs + CALLER_TIMEOUT_MS) / SAMPLE_EVERY_MS) + 10;
	const sampler = startSampler(() => countsOf(mock), SAMPLE_EVERY_MS, maxSamples);
	let answered = 0;
	const stopProgress = startProgress("direct", mock, () => answered);
	try {
		const run = await runArrivals(
			OVERLOAD_PER_SECOND,
			durationMs,
			async (index, _dueMs, startedAtMs) => {
				const caller = await callDirect(url, classes[index] ?? "low", index, startedAtMs, random);
				answered += 1;
				return caller;
			},
		);
		return {
			startedAtMs: run.startedAtMs,
			callers: run.results,
			samples: sampler.stop(),
			provider: mock.provider.stats(),
		};
	} finally {
		stopProgress();
		sampler.stop();
		await mock.close();
	}
}

function pair(summary: Summary): string {
	return `${milliseconds(summary.p50)} / ${milliseconds(summary.p95)}`;
}

function classCounts(classes: readonly PriorityClass[]): string {
	const counts = countBy(classes, (priority) => priority);
	return `high ${counts.high ?? 0}, low ${counts.low ?? 0}`;
}

/** What the overload through tollbooth measured at one provider latency. */
interface LatencyRun {
	latencyMs: number;
	rows: Row[];
	report: Record<string, unknown>;
}

/** Refused callers (tollbooth's own 429/503): how long each waited before it was told. */
function toldAfterMs(shots: readonly Shot[]): number[] {
	return shots
		.filter((shot) => {
			const outcome = callerOutcome(shot);
			return outcome !== "ok" && outcome !== "cut off" && outcome !== "provider 429 passed on";
		})
		.map((shot) => shot.endMs - shot.sentMs);
}

/** The unloaded phase then the overload through tollbooth, with a provider answering in latencyMs. */
async function throughTollboothAt(
	latencyMs: number,
	classes: readonly PriorityClass[],
): Promise<LatencyRun> {
	const through = await runThroughTollbooth({
		label: `overload at ${latencyMs} ms`,
		pool: { requestsPerMinute: REQUESTS_PER_MINUTE, tokensPerMinute: TOKENS_PER_MINUTE },
		provider: { requestsPerMinute: REQUESTS_PER_MINUTE, tokensPerMinute: TOKENS_PER_MINUTE },
		classes,
		unloaded: { ratePerSecond: UNLOADED_PER_SECOND, durationMs: UNLOADED_MS },
		latencyMs,
	});
	const allowed = (window: Window) => allowedIn(window, REQUESTS_PER_MINUTE);
	const { shots, startedAtMs } = through.overload;
	const unloadedHigh = summarize(
		through.unloaded
			.filter((shot) => callerOutcome(shot) === "ok")
			.map((shot) => shot.endMs - shot.sentMs),
	);
	const high = okLatency(shots, classes, "high");
	const low = okLatency(shots, classes, "low");
	const highFactor = high.p95 / unloadedHigh.p95;
	const saturated = windowOf(through.samples, startedAtMs, SATURATED_FROM_MS, OVERLOAD_MS);
	const goodput = saturated.ok / allowed(saturated);
	const outcomes = outcomesByClass(shots, classes);
	const deadline = deadlineCheck(shots, classes, latencyMs);
	const passedOn = shots.filter((shot) => callerOutcome(shot) === "provider 429 passed on").length;
	const providerShare = through.provider.rateLimited / Math.max(1, through.provider.requests);
	const told = toldAfterMs(shots);
	const toldSummary = summarize(told);
	const toldAtOnce = told.filter((ms) => ms <= TOLD_AT_ONCE_MS).length / Math.max(1, told.length);
	const pool = through.poolAtEnd as {
		status?: { inFlight?: number; queued?: number; sinceStart?: Record<string, number> };
	};
	// The pool's own decisions, apart from the time the Worker and the machine add around them.
	const since = pool.status?.sinceStart ?? {};
	const refusedByPool = (since.deadlineRejected ?? 0) + (since.expired ?? 0) + (since.shed ?? 0);
	const refusedOnArrival = (since.deadlineRejected ?? 0) / Math.max(1, refusedByPool);

	const rows: Row[] = [
		{
			label: `unloaded high (${UNLOADED_PER_SECOND}/s) p50 / p95`,
			value: `${pair(unloadedHigh)} (n=${unloadedHigh.count})`,
		},
		{ label: "overload offered", value: `${shots.length} (${classCounts(classes)})` },
		{ label: "high answers", value: JSON.stringify(outcomes.high) },
		{ label: "low answers", value: JSON.stringify(outcomes.low) },
		{ label: "high p50 / p95 (2xx)", value: pair(high) },
		{
			label: "high p95 ÷ unloaded p95",
			value: `${highFactor.toFixed(2)}×`,
			target: `≤ ${HIGH_P95_FACTOR_TARGET}×`,
			met: highFactor <= HIGH_P95_FACTOR_TARGET,
		},
		{
			label: "high queue p50 / p95 (x-tollbooth-queue-ms)",
			value: pair(queueMs(shots, classes, "high")),
		},
		{ label: "low p50 / p95 (2xx)", value: pair(low) },
		{
			label: "low queue p50 / p95 (x-tollbooth-queue-ms)",
			value: pair(queueMs(shots, classes, "low")),
		},
		{
			label: `goodput ${spanOf(saturated)}`,
			value: `${percent(goodput)} (${saturated.ok} of ${Math.round(allowed(saturated))})`,
			target: `≥ ${percent(GOODPUT_TARGET, 0)} of R`,
			met: goodput >= GOODPUT_TARGET,
		},
		{
			label: "provider 429 share",
			value: `${percent(providerShare, 2)} (${through.provider.rateLimited} of ${through.provider.requests})`,
			target: `≤ ${percent(PROVIDER_429_SHARE_TARGET)}`,
			met: providerShare <= PROVIDER_429_SHARE_TARGET,
		},
		{
			label: "callers that saw a provider 429",
			value: String(passedOn),
			target: "0",
			met: passedOn === 0,
		},
		{
			label: "refused callers: waited before told p50 / p95",
			value: `${pair(toldSummary)} (n=${toldSummary.count})`,
		},
		{
			label: "refused by the pool on arrival (not after waiting)",
			value: `${percent(refusedOnArrival)} (${since.deadlineRejected ?? 0} of ${refusedByPool})`,
		},
		{
			label: `refused callers told within ${TOLD_AT_ONCE_MS} ms`,
			value: percent(toldAtOnce),
			target: `≥ ${percent(TOLD_AT_ONCE_SHARE_TARGET, 0)}`,
			met: toldAtOnce >= TOLD_AT_ONCE_SHARE_TARGET,
		},
		...deadlineRows(deadline),
		{
			label: "pool at the end: in flight, queued",
			value: `${pool.status?.inFlight}, ${pool.status?.queued}`,
			target: "0, 0",
			met: pool.status?.inFlight === 0 && pool.status?.queued === 0,
		},
		{ label: "pool counts since start", value: JSON.stringify(pool.status?.sinceStart) },
	];
	printTable(
		`overload at ${latencyMs} ms — through tollbooth: ${OVERLOAD_PER_SECOND}/s (3× R = ${REQUESTS_PER_MINUTE} RPM) for ${OVERLOAD_MS / 1000} s, ${percent(HIGH_SHARE, 0)} high (max wait ${MAX_WAIT_MS.high / 1000} s) / low (${MAX_WAIT_MS.low / 1000} s)`,
		rows,
	);
	const report = {
		providerLatencyMs: latencyMs,
		unloadedHighMs: unloadedHigh,
		latencyMs: { high, low },
		highP95OverUnloaded: highFactor,
		queueMs: { high: queueMs(shots, classes, "high"), low: queueMs(shots, classes, "low") },
		outcomes,
		goodput: { ...saturated, ofLimit: goodput },
		provider: through.provider,
		providerRateLimitedShare: providerShare,
		providerPer10s: perSlot(through.samples, startedAtMs, 10_000),
		refusedToldMs: { ...toldSummary, withinShare: toldAtOnce, withinMs: TOLD_AT_ONCE_MS },
		refusedOnArrivalShare: refusedOnArrival,
		deadline,
		poolAtEnd: through.poolAtEnd,
		callerErrors: countBy(
			shots.filter((shot) => shot.errorBody !== undefined),
			(shot) => `${shot.status} ${shot.errorBody?.replace(/\d+(\.\d+)?/g, "N")}`,
		),
		rows,
		shots: shots.map(({ index, sentMs, endMs, status, headers }) => ({
			index,
			priority: classes[index],
			sentMs: Math.round(sentMs),
			endMs: Math.round(endMs),
			status,
			queueMs: headers["x-tollbooth-queue-ms"],
		})),
	};
	return { latencyMs, rows, report };
}

async function run(): Promise<boolean> {
	const classes = mixedClasses(Math.round((OVERLOAD_PER_SECOND * OVERLOAD_MS) / 1000));
	const runs: LatencyRun[] = [];
	for (const latencyMs of OVERLOAD_LATENCIES_MS)
		runs.push(await throughTollboothAt(latencyMs, classes));
	const direct = await runStraightToProvider(classes);
	const allowed = (window: Window) => allowedIn(window, REQUESTS_PER_MINUTE);

	const directOk = (priority: PriorityClass) =>
		summarize(
			direct.callers
				.filter((caller) => classes[caller.index] === priority && caller.outcome === "ok")
				.map((caller) => caller.endMs - caller.sentMs),
		);
	const directOutcomes = (priority: PriorityClass) =>
		countBy(
			direct.callers.filter((caller) => classes[caller.index] === priority),
			(caller) => caller.outcome,
		);
	const directWindow = windowOf(direct.samples, direct.startedAtMs, SATURATED_FROM_MS, OVERLOAD_MS);
	const directGoodput = directWindow.ok / allowed(directWindow);
	const directShare = direct.provider.rateLimited / Math.max(1, direct.provider.requests);
	const directSends = summarize(direct.callers.map((caller) => caller.sends));
	const directRows: Row[] = [
		{
			label: `goodput ${spanOf(directWindow)}`,
			value: `${percent(directGoodput)} (${directWindow.ok} of ${Math.round(allowed(directWindow))})`,
		},
		{
			label: "provider 429 share",
			value: `${percent(directShare, 1)} (${direct.provider.rateLimited} of ${direct.provider.requests})`,
		},
		{ label: "high answers", value: JSON.stringify(directOutcomes("high")) },
		{ label: "low answers", value: JSON.stringify(directOutcomes("low")) },
		{ label: "high p50 / p95 (2xx)", value: pair(directOk("high")) },
		{ label: "low p50 / p95 (2xx)", value: pair(directOk("low")) },
		{
			label: "sends per caller p50 / max",
			value: `${directSends.p50} / ${directSends.max}`,
		},
	];
	printTable(
		`overload — the same arrivals straight to the provider, clients retrying 429s (wait max(retry-after, U(0, min(${BACKOFF_CAP_MS / 1000} s, ${BACKOFF_BASE_MS / 1000} s × 2^(n−1)))), ≤ ${MAX_RETRIES} retries, give up at the max wait)`,
		directRows,
	);

	const rows = runs.flatMap((latencyRun) =>
		latencyRun.rows.map((row) => ({ ...row, label: `${latencyRun.latencyMs} ms: ${row.label}` })),
	);
	return saveReport("overload", rows, {
		setup: {
			requestsPerMinute: REQUESTS_PER_MINUTE,
			tokensPerMinute: TOKENS_PER_MINUTE,
			burstSeconds: BURST_SECONDS,
			providerLatenciesMs: OVERLOAD_LATENCIES_MS,
			baselineProviderLatencyMs: PROVIDER_LATENCY_MS,
			unloaded: { ratePerSecond: UNLOADED_PER_SECOND, durationMs: UNLOADED_MS, priority: "high" },
			overload: {
				ratePerSecond: OVERLOAD_PER_SECOND,
				durationMs: OVERLOAD_MS,
				highShare: HIGH_SHARE,
			},
			maxWaitMs: MAX_WAIT_MS,
			agingBoundMs: AGING_BOUND_MS,
			maxQueueLength: MAX_QUEUE_LENGTH,
			callerTimeoutMs: CALLER_TIMEOUT_MS,
			saturatedWindow: `from ${SATURATED_FROM_MS / 1000} s after the overload started to its end (${OVERLOAD_MS / 1000} s), between the ${SAMPLE_EVERY_MS} ms samples of the provider's successes nearest inside it`,
			deadline: `each answer within the caller's max wait + the provider's latency + ${DEADLINE_MARGIN_MS} ms`,
			refusedTold: `a refused caller (tollbooth's own 429/503) is told at once when its answer comes within ${TOLD_AT_ONCE_MS} ms of sending`,
			baseline: {
				backoffBaseMs: BACKOFF_BASE_MS,
				backoffCapMs: BACKOFF_CAP_MS,
				maxRetries: MAX_RETRIES,
				wait: "max(retry-after-ms or retry-after when 0 < it ≤ 60 s, uniform(0, min(cap, base × 2^(n−1))))",
				giveUp:
					"after maxRetries retries, or when the next send would start after the caller's max wait",
			},
		},
		tollbooth: Object.fromEntries(
			runs.map((latencyRun) => [`${latencyRun.latencyMs}ms`, latencyRun.report]),
		),
		direct: {
			latencyMs: { high: directOk("high"), low: directOk("low") },
			outcomes: { high: directOutcomes("high"), low: directOutcomes("low") },
			goodput: { ...directWindow, ofLimit: directGoodput },
			provider: direct.provider,
			providerRateLimitedShare: directShare,
			providerPer10s: perSlot(direct.samples, direct.startedAtMs, 10_000),
			sends: directSends,
		},
		directRows,
	});
}

export const overload: Scenario = {
	name: "overload",
	summary:
		"3× R for 60 s, 20% high / 80% low: high latency, goodput, deadlines; vs retrying clients",
	run,
};
