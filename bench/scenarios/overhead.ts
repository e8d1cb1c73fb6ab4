// What tollbooth adds to one request: the same small chat request straight to the mock provider,
// through a Worker that only forwards, and through tollbooth, interleaved, at concurrency 1 and 32;
// a fourth way (forward with only the Pool's acquire and release) splits the Pool's share out, and
// a fifth (tollbooth through a pool with allowances off) shows what allowances save.
import { SMALL_CHAT_BODY } from "../lib/bench-gateway.ts";
import { type BenchStack, startBenchStack, type Variant } from "../lib/bench-stack.ts";
import { HttpClient, interleaved, runClosedLoop, type Timing } from "../lib/http-client.ts";
import { finish, type Row, writeChart } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";
import { medianDifferenceInterval, type Summary, summarize } from "../lib/stats.ts";
import { cumulative, lineChart } from "../lib/svg-chart.ts";

const VARIANTS: readonly Variant[] = ["direct", "passthrough", "pooled", "tollbooth", "strict"];
const WARMUP_MS = 3_000;
const PHASE_MS = 10_000;
/**
 * Concurrency 1 gets three times as long: its target is a difference of medians near 1 ms, and the
 * ~200 samples a variant gets in 10 s put that difference within ±0.3 ms of noise.
 */
const SERIAL_PHASE_MS = 30_000;
const CONCURRENCIES = [1, 8, 32] as const;
const ADDED_P50_TARGET_MS = 1;
const ADDED_P99_TARGET_MS = 5;

interface Added {
	p50: number;
	p95: number;
	p99: number;
}

interface Phase {
	concurrency: number;
	requests: number;
	failed: number;
	errors: string[];
	non2xx: Record<string, number>;
	latencyMs: Record<string, Summary>;
	/** tollbooth minus the pass-through Worker, percentile by percentile. */
	addedMs: Added;
	/** Where the added p50 could lie by chance alone: a 95% bootstrap interval. */
	addedP50IntervalMs: [number, number];
	/** The same for the Pool round trips alone (pooled minus pass-through). */
	poolAddedMs: Added;
	/** tollbooth with allowances off minus the pass-through Worker. */
	strictAddedMs: Added;
	samples: Record<string, number[]>;
}

async function measure(stack: BenchStack, concurrency: number, durationMs: number): Promise<Phase> {
	const client = new HttpClient(concurrency * VARIANTS.length);
	const samples: Record<string, number[]> = Object.fromEntries(VARIANTS.map((v) => [v, []]));
	const non2xx: Record<string, number> = {};
	try {
		const loop = await runClosedLoop({
			client,
			connections: concurrency,
			durationMs,
			next: interleaved(
				VARIANTS.map((variant) => stack.target(variant, SMALL_CHAT_BODY)),
				concurrency,
				concurrency,
			),
			record(target, timing: Timing) {
				if (timing.status < 200 || timing.status > 299) {
					const key = `${target.name} ${timing.status}`;
					non2xx[key] = (non2xx[key] ?? 0) + 1;
				}
				samples[target.name]?.push(timing.totalMs);
			},
		});
		const latencyMs = Object.fromEntries(
			VARIANTS.map((variant) => [variant, summarize(samples[variant] ?? [])]),
		);
		const through = (variant: Variant) => latencyMs[variant] as Summary;
		const added = (variant: Variant): Added => ({
			p50: through(variant).p50 - through("passthrough").p50,
			p95: through(variant).p95 - through("passthrough").p95,
			p99: through(variant).p99 - through("passthrough").p99,
		});
		return {
			concurrency,
			requests: loop.completed,
			failed: loop.failed,
			errors: loop.errors,
			non2xx,
			latencyMs,
			addedMs: added("tollbooth"),
			addedP50IntervalMs: medianDifferenceInterval(
				samples.passthrough ?? [],
				samples.tollbooth ?? [],
			),
			poolAddedMs: added("pooled"),
			strictAddedMs: added("strict"),
			samples,
		};
	} finally {
		client.close();
	}
}

const ms = (value: number) => `${value.toFixed(2)} ms`;

async function run(): Promise<boolean> {
	const stack = await startBenchStack();
	console.log(`overhead: gateway ${stack.gateway.origin}, mock ${stack.mock.url}`);
	const phases: Phase[] = [];
	try {
		await measure(stack, 4, WARMUP_MS);
		for (const concurrency of CONCURRENCIES) {
			phases.push(
				await measure(stack, concurrency, concurrency === 1 ? SERIAL_PHASE_MS : PHASE_MS),
			);
		}
	} finally {
		await stack.stop();
	}

	const rows: Row[] = [];
	for (const phase of phases) {
		const c = phase.concurrency;
		for (const variant of VARIANTS) {
			const s = phase.latencyMs[variant] as Summary;
			rows.push({
				label: `c=${c} ${variant} p50 / p95 / p99 (n)`,
				value: `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)} (${s.count})`,
			});
		}
		const atOne = c === 1;
		rows.push(
			{
				label: `c=${c} tollbooth − pass-through p50 (95% interval)`,
				value: `${ms(phase.addedMs.p50)} (${phase.addedP50IntervalMs.map(ms).join(" to ")})`,
				...(atOne && {
					target: `≤ ${ADDED_P50_TARGET_MS} ms`,
					met: phase.addedMs.p50 <= ADDED_P50_TARGET_MS,
				}),
			},
			{ label: `c=${c} tollbooth − pass-through p95`, value: ms(phase.addedMs.p95) },
			{
				label: `c=${c} tollbooth − pass-through p99`,
				value: ms(phase.addedMs.p99),
				...(atOne && {
					target: `≤ ${ADDED_P99_TARGET_MS} ms`,
					met: phase.addedMs.p99 <= ADDED_P99_TARGET_MS,
				}),
			},
			{
				label: `c=${c}   of which Pool round trips p50 / p99`,
				value: `${ms(phase.poolAddedMs.p50)} / ${ms(phase.poolAddedMs.p99)}`,
			},
			{
				label: `c=${c} allowances off − pass-through p50 / p99`,
				value: `${ms(phase.strictAddedMs.p50)} / ${ms(phase.strictAddedMs.p99)}`,
			},
			{
				label: `c=${c} failed or not 2xx`,
				value: `${phase.failed} / ${JSON.stringify(phase.non2xx)}`,
				target: "none",
				met: phase.failed === 0 && Object.keys(phase.non2xx).length === 0,
			},
		);
	}

	const charts = await Promise.all(
		phases.map((phase) =>
			writeChart(
				`overhead-c${phase.concurrency}`,
				lineChart({
					title: `Latency distribution at concurrency ${phase.concurrency}`,
					xLabel: "latency (ms)",
					yLabel: "% of requests at or below",
					xMax: Math.max(...VARIANTS.map((v) => (phase.latencyMs[v] as Summary).p99)) * 1.2,
					yMax: 100,
					series: VARIANTS.map((variant) => ({
						name: variant,
						points: cumulative(phase.samples[variant] ?? []),
					})),
				}),
			),
		),
	);
	return finish("overhead", "overhead — one small chat request four ways, interleaved", rows, {
		setup: {
			variants: {
				direct: "Node client → Node mock provider (own thread, zero latency)",
				passthrough: "→ bench Worker /bench/passthrough (fetch and relay, no logic) → mock",
				pooled:
					"→ bench Worker /bench/pooled: Pool acquire RPC, fetch, release RPC after the answer",
				tollbooth:
					"→ tollbooth in the same isolate (auth, estimate, admission from an allowance or a Pool acquire, forward, release) → mock",
				strict: "→ tollbooth through a pool with allowances off: a Pool acquire for every request",
			},
			interleaving: "each connection sends the five variants in a shuffled order every round",
			warmupMs: WARMUP_MS,
			phaseMs: PHASE_MS,
			serialPhaseMs: SERIAL_PHASE_MS,
			client: "node:http, keep-alive; latency from request start to the last body byte",
		},
		phases: phases.map(({ samples: _samples, ...phase }) => phase),
		charts,
	});
}

export const overhead: Scenario = {
	name: "overhead",
	summary: "latency tollbooth adds over a pass-through Worker, at concurrency 1 and 32",
	run,
};
